-- A whole page in one query (the rows and their identities), newest first.
{{lead_columns}}
WHERE ($1 = '' OR status = $1) AND ($2 = '' OR source = $2)
  AND ($3::bigint = 0 OR responsible_user_id = $3::bigint)
  AND ($4::bigint = 0 OR created_at >= to_timestamp($4::bigint / 1000000.0))
  AND ($5::bigint = 0 OR created_at < to_timestamp($5::bigint / 1000000.0))
  AND ($6::bigint = 0 OR id < $6::bigint) AND merged_into IS NULL
ORDER BY id DESC LIMIT $7
