UPDATE users SET name = CASE WHEN $2 THEN $3 ELSE name END,
  email = CASE WHEN $4 THEN $5 ELSE email END,
  active = CASE WHEN $6 THEN $7 ELSE active END,
  extension = CASE WHEN $8 THEN nullif($9, '') ELSE extension END
WHERE id = $1 RETURNING id
