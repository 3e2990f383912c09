INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  deadline)
VALUES ($1, $2, $3, $4, $5, NULLIF($6::bigint, 0),
  CASE WHEN $7::boolean THEN to_timestamp($8::bigint / 1000000.0) END)  -- $7 false: no deadline
RETURNING id
