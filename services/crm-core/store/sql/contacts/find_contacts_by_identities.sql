SELECT DISTINCT c.id
FROM unnest($1::text[], $2::text[]) AS wanted (kind, value)
JOIN contact_identities AS i USING (kind, value)
JOIN contacts AS c ON c.id = i.contact_id AND c.merged_into IS NULL
ORDER BY c.id
