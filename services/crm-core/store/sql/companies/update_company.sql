UPDATE companies SET name = $3, search_name = $4, industry = $5, website = $6,
  responsible_user_id = NULLIF($7::bigint, 0), source_id = $8, comments = $9,
  version = version + 1, updated_at = now()
WHERE id = $1 AND version = $2 AND merged_into IS NULL RETURNING id
