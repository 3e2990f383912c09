-- The routes given to UpdateSettings (pipeline 0, queue '': the defaults); their queues exist.
INSERT INTO email_routes (address, pipeline_id, queue_key)
SELECT a, nullif(p, 0), nullif(q, '')
FROM unnest($1::text[], $2::bigint[], $3::text[]) AS x (a, p, q)
