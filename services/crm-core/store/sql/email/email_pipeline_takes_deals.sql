-- Whether pipeline $1 exists and has a PROCESS stage, where new deals start.
SELECT 1 FROM pipeline_stages WHERE pipeline_id = $1 AND semantics = 'PROCESS' LIMIT 1
