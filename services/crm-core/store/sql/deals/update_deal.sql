UPDATE deals SET title = $2, amount_minor = $3, currency = $4, responsible_user_id = nullif($5, 0),
  expected_close_date = nullif($6, '')::date, source_id = $7, version = version + 1,
  updated_at = now()
WHERE id = $1
