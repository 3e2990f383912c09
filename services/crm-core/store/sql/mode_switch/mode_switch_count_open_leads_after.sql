-- Open leads (status semantics PROCESS, not folded by a merge) after a lead id.
SELECT count(*) FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
WHERE l.id > $1 AND s.semantics = 'PROCESS' AND l.merged_into IS NULL
