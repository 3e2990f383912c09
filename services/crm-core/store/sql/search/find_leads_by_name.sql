-- $1: LIKE patterns, one for each folded form of the prefix (naming's SearchQueryForms) at each
-- place a word starts in a stored key (naming's StoredSearchKey): the key's start, after a space
-- (also a reading's start: readings are joined by a newline and a space), a hyphen or an
-- apostrophe ("beeth" finds "ludwig van beethoven", "claire" "marie-claire", "epi" "l'epi d'or").
-- A lead matches when a word of its name ("first last") or of its company name starts with it.
-- Every pattern is served by 0016's trigram indexes (a bitmap scan, never the whole table).
-- $4 holds the forms' "last first" readings as patterns over search_name ("martin le" →
-- 'le% martin' at a reading's start and end), so that a lead is found as a contact is.
SELECT 'LEAD', l.id, l.title, l.company_name, coalesce(l.responsible_user_id, 0),
  s.semantics <> 'PROCESS'
FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
WHERE l.merged_into IS NULL AND l.id > $2
  AND (l.search_name LIKE ANY ($1::text[]) OR l.search_company LIKE ANY ($1::text[])
    OR l.search_name LIKE ANY ($4::text[]))
ORDER BY l.id LIMIT $3
