-- $1 as in find_leads_by_name.sql: a word of the name starts with it. 0016's trigram index.
SELECT 'COMPANY', c.id, c.name, '', coalesce(c.responsible_user_id, 0), false
FROM companies AS c
WHERE c.merged_into IS NULL AND c.id > $2
  AND (c.search_name LIKE $1 OR c.search_name LIKE '% ' || $1 OR c.search_name LIKE '%-' || $1)
ORDER BY c.id LIMIT $3
