-- Newest first, ids below $2 (0: from the newest).
SELECT id, coalesce(from_pipeline_id, 0), coalesce(from_stage_id, ''), to_pipeline_id,
  to_stage_id, coalesce(user_id, 0), coalesce(event_id, ''),
  (extract(epoch FROM at) * 1000000)::bigint
FROM deal_stage_history WHERE deal_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3
