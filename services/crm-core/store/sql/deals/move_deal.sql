-- A stage move counts as activity: idleness starts again from it.
UPDATE deals SET pipeline_id = $2, stage_id = $3, stage_semantics = $4, stage_changed_at = now(),
  last_activity_at = now(), version = version + 1, updated_at = now()
WHERE id = $1
