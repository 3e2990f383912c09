UPDATE contacts SET first_name = $3, last_name = $4, search_first_last = $5,
  search_last_first = $6, position = $7, responsible_user_id = NULLIF($8::bigint, 0),
  source_id = $9, comments = $10, version = version + 1, updated_at = now()
WHERE id = $1 AND version = $2 AND merged_into IS NULL RETURNING id
