-- The job the background switch runs; total: the open leads now (status semantics PROCESS).
INSERT INTO mode_switch_jobs (to_mode, total, user_id)
SELECT $1, (SELECT count(*) FROM leads l JOIN lead_statuses s ON s.id = l.status
            WHERE s.semantics = 'PROCESS' AND l.merged_into IS NULL), nullif($2, 0)
RETURNING id
