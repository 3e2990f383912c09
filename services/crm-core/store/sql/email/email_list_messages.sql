-- The messages of an activity ($1 > 0) or of a record ($2 type, $3 id), oldest first, after
-- id $4, at most $5.
{{email_message_columns}}
WHERE (($1::bigint > 0 AND activity_id = $1::bigint)
       OR ($1::bigint = 0 AND owner_type = $2 AND owner_id = $3::bigint))
  AND id > $4::bigint
ORDER BY id LIMIT $5
