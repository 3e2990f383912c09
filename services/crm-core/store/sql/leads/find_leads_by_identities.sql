-- Every lead holding one of the identities, with all its identities and its status's semantics.
SELECT DISTINCT l.id, s.semantics, coalesce(l.responsible_user_id, 0), all_ids.kind, all_ids.value
FROM unnest($1::text[], $2::text[]) AS wanted (kind, value)
JOIN lead_identities AS matched USING (kind, value)
JOIN leads AS l ON l.id = matched.lead_id
JOIN lead_statuses AS s ON s.id = l.status
JOIN lead_identities AS all_ids ON all_ids.lead_id = l.id
