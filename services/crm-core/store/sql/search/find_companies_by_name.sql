-- $1 as in find_leads_by_name.sql: a word of the name starts with a form of the prefix. 0016's
-- trigram index.
SELECT 'COMPANY', c.id, c.name, '', coalesce(c.responsible_user_id, 0), false
FROM companies AS c
WHERE c.merged_into IS NULL AND c.id > $2
  AND c.search_name LIKE ANY ($1::text[])
ORDER BY c.id LIMIT $3
