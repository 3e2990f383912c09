SELECT pipeline_id, stage_id, version FROM deals WHERE id = $1 FOR UPDATE
