-- The stages in order, each with the deals sitting in it now.
SELECT s.id, s.name, s.sort, s.semantics, coalesce(s.idle_days, 0),
  (SELECT count(*) FROM deals d WHERE d.pipeline_id = s.pipeline_id AND d.stage_id = s.id)
FROM pipeline_stages s WHERE s.pipeline_id = $1 ORDER BY s.sort
