-- Open leads (not merged away) made for contacts $1 or returning to leads $2, with all their
-- identities (none: one row, kind and value NULL): a returning lead holds only the identities of
-- the message that made it and is found through these links when its person writes again by
-- another identity of that contact or earlier lead. Indexes: leads_contact,
-- leads_previous_lead (0017).
SELECT l.id, s.semantics, coalesce(l.responsible_user_id, 0), coalesce(l.contact_id, 0),
  coalesce(l.previous_lead_id, 0), i.kind, i.value
FROM leads AS l
JOIN lead_statuses AS s ON s.id = l.status AND s.semantics = 'PROCESS'
LEFT JOIN lead_identities AS i ON i.lead_id = l.id
WHERE l.merged_into IS NULL
  AND (l.contact_id = ANY ($1::bigint[]) OR l.previous_lead_id = ANY ($2::bigint[]))
