UPDATE leads SET
  title = CASE WHEN $3 THEN $4 ELSE title END,
  status = CASE WHEN $5 THEN $6 ELSE status END,
  first_name = CASE WHEN $7 THEN $8 ELSE first_name END,
  last_name = CASE WHEN $9 THEN $10 ELSE last_name END,
  company_name = CASE WHEN $11 THEN $12 ELSE company_name END,
  city = CASE WHEN $13 THEN $14 ELSE city END,
  comments = CASE WHEN $15 THEN $16 ELSE comments END,
  responsible_user_id = CASE WHEN $17 THEN NULLIF($18::bigint, 0) ELSE responsible_user_id END,
  version = version + 1, updated_at = now()
WHERE id = $1 AND ($2::bigint = 0 OR version = $2::bigint) RETURNING id
