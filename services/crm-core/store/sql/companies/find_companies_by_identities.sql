SELECT DISTINCT c.id
FROM unnest($1::text[], $2::text[]) AS wanted (kind, value)
JOIN company_identities AS i USING (kind, value)
JOIN companies AS c ON c.id = i.company_id AND c.merged_into IS NULL
ORDER BY c.id
