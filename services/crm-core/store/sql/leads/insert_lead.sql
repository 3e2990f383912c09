INSERT INTO leads (title, status, source, first_name, last_name, company_name, city, comments,
  responsible_user_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9::bigint, 0)) RETURNING id
