INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  deadline)
VALUES ($1, $2, $3, $4, $5, NULLIF($6::bigint, 0),
  CASE WHEN $7::bigint = 0 THEN NULL ELSE to_timestamp($7::bigint / 1000000.0) END)
RETURNING id
