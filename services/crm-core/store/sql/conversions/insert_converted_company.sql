INSERT INTO companies (name, search_name, responsible_user_id, source_id)
VALUES ($1, $2, nullif($3, 0), $4) RETURNING id
