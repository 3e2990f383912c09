-- These leads, still open, locked, with what converting them needs.
SELECT l.id, l.title, l.first_name, l.last_name, coalesce(l.responsible_user_id, 0), l.source,
  coalesce(l.contact_id, 0), coalesce(l.company_id, 0), coalesce(l.origin_event_id, ''),
  l.status
FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
WHERE l.id = ANY ($1::bigint[]) AND s.semantics = 'PROCESS' AND l.merged_into IS NULL
ORDER BY l.id FOR UPDATE OF l
