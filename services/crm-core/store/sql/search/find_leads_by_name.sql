-- $1: a folded prefix with LIKE's metacharacters escaped, followed by '%'. A lead's name
-- matches from its first or its last name (search_name is "first last"), and as "last first"
-- as a contact's does: $4 holds that prefix's "last first" readings as patterns over
-- search_name ("martin le" → 'le% martin').
SELECT 'LEAD', l.id, l.title, l.company_name, coalesce(l.responsible_user_id, 0),
  s.semantics <> 'PROCESS'
FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
WHERE l.merged_into IS NULL AND l.id > $2
  AND (l.search_name LIKE $1 OR l.search_name LIKE '% ' || $1 OR l.search_company LIKE $1
    OR l.search_name LIKE ANY ($4::text[]))
ORDER BY l.id LIMIT $3
