-- The running mode switch, locked for this step; another crm-core running a step skips it.
SELECT id, to_mode, last_lead_id, total, done FROM mode_switch_jobs
WHERE state = 'RUNNING' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
