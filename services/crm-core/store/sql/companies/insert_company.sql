INSERT INTO companies (name, search_name, industry, website, responsible_user_id, source_id,
  comments, origin_event_id)
VALUES ($1, $2, $3, $4, NULLIF($5::bigint, 0), $6, $7, NULLIF($8, ''))
RETURNING id
