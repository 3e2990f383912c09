INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, amount_minor, currency,
                   company_id, responsible_user_id, expected_close_date, source_id, lead_id,
                   origin_event_id)
VALUES ($1, $2, $3, $4, $5, $6, nullif($7, 0), nullif($8, 0), nullif($9, '')::date, $10,
        nullif($11, 0), nullif($12, ''))
RETURNING id
