-- The lead's identities onto the contact it converts into, except those another contact (not
-- merged away) holds: one person's phone is never copied onto another's record. The converted
-- lead keeps them all.
INSERT INTO contact_identities (kind, value, contact_id)
SELECT l.kind, l.value, $2 FROM lead_identities AS l
WHERE l.lead_id = $1
  AND NOT EXISTS (
    SELECT 1 FROM contact_identities AS o
    JOIN contacts AS c ON c.id = o.contact_id AND c.merged_into IS NULL
    WHERE o.kind = l.kind AND o.value = l.value AND o.contact_id <> $2)
ON CONFLICT DO NOTHING
