INSERT INTO deal_stage_history (deal_id, from_pipeline_id, from_stage_id, to_pipeline_id,
                                to_stage_id, user_id, event_id)
VALUES ($1, nullif($2, 0), nullif($3, ''), $4, $5, nullif($6, 0), nullif($7, ''))
