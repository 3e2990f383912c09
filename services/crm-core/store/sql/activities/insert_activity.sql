-- A planned activity, or one logged done ($9: completed; $10 false: completed now, else at $11
-- micros since the epoch).
INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  deadline, completed, completed_at)
VALUES ($1, $2, $3, $4, $5, NULLIF($6::bigint, 0),
  CASE WHEN $7::boolean THEN to_timestamp($8::bigint / 1000000.0) END,  -- $7 false: no deadline
  $9::boolean,
  CASE WHEN $9::boolean THEN
    CASE WHEN $10::boolean THEN to_timestamp($11::bigint / 1000000.0) ELSE now() END
  END)
RETURNING id
