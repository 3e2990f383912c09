INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first, position,
  responsible_user_id, source_id, comments, origin_event_id)
VALUES ($1, $2, $3, $4, $5, NULLIF($6::bigint, 0), $7, $8, NULLIF($9, ''))
RETURNING id
