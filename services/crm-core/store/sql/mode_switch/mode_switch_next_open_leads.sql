-- The next open leads after a lead id, in id order, with every identity ('' kind: none).
SELECT l.id, coalesce(i.kind, ''), coalesce(i.value, '')
FROM (SELECT l.id FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
      WHERE l.id > $1 AND s.semantics = 'PROCESS' AND l.merged_into IS NULL
      ORDER BY l.id LIMIT $2) AS l
LEFT JOIN lead_identities AS i ON i.lead_id = l.id
ORDER BY l.id
