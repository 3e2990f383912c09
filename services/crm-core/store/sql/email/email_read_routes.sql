-- The routes of the recipient addresses $1: the pipeline (0: none) with its first PROCESS stage
-- ('' when it has none), and the queue ('' : none).
SELECT r.address, coalesce(r.pipeline_id, 0),
  coalesce((SELECT st.id FROM pipeline_stages AS st
            WHERE st.pipeline_id = r.pipeline_id AND st.semantics = 'PROCESS'
            ORDER BY st.sort LIMIT 1), ''),
  coalesce(r.queue_key, '')
FROM email_routes AS r WHERE r.address = ANY($1::text[])
