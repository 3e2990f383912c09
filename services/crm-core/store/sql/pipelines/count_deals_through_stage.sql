-- Deals whose stage history names the stage of the pipeline, entering or leaving it (AddStage
-- with a removed stage's id). No index leads here: a scan of deal_stage_history, once per
-- AddStage, an admin's rare edit.
SELECT count(DISTINCT deal_id) FROM deal_stage_history
WHERE (to_pipeline_id = $1 AND to_stage_id = $2) OR (from_pipeline_id = $1 AND from_stage_id = $2)
