-- Serialises edits of one pipeline (FOR UPDATE) against each other and against deals entering
-- its stages (which take it FOR SHARE, lock_pipeline_shared).
SELECT version FROM pipelines WHERE id = $1 FOR UPDATE
