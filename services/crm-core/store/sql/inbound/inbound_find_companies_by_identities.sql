-- Every company (not folded by a merge) holding one of the identities, with all its identities.
SELECT DISTINCT c.id, coalesce(c.responsible_user_id, 0), all_ids.kind, all_ids.value
FROM unnest($1::text[], $2::text[]) AS wanted (kind, value)
JOIN company_identities AS matched USING (kind, value)
JOIN companies AS c ON c.id = matched.company_id AND c.merged_into IS NULL
JOIN company_identities AS all_ids ON all_ids.company_id = c.id
