-- $1: a folded prefix with LIKE's metacharacters escaped, followed by '%'. A lead matches when
-- a word of its name ("first last") or of its company name starts with it: at the start, after
-- a space or after a hyphen ("beeth" finds "ludwig van beethoven", "claire" "marie-claire").
-- Every arm is served by 0016's trigram indexes (a bitmap scan, never the whole table).
SELECT 'LEAD', l.id, l.title, l.company_name, coalesce(l.responsible_user_id, 0),
  s.semantics <> 'PROCESS'
FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
WHERE l.merged_into IS NULL AND l.id > $2
  AND (l.search_name LIKE $1 OR l.search_name LIKE '% ' || $1 OR l.search_name LIKE '%-' || $1
    OR l.search_company LIKE $1 OR l.search_company LIKE '% ' || $1
    OR l.search_company LIKE '%-' || $1)
ORDER BY l.id LIMIT $3
