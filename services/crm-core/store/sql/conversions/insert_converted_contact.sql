INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first,
                      responsible_user_id, source_id)
VALUES ($1, $2, $3, $4, nullif($5, 0), $6) RETURNING id
