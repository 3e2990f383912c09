{{activity_columns}}
WHERE ($1 = '' OR (owner_type = $1 AND owner_id = $2::bigint))
  AND ($3::bigint = 0 OR responsible_user_id = $3::bigint)
  AND ($4 = 0 OR ($4 = 1 AND NOT completed) OR ($4 = 2 AND completed))
  AND ($5::bigint = 0 OR id < $5::bigint)
  AND (NOT $7::boolean OR (NOT completed AND deadline < now()))
ORDER BY id DESC LIMIT $6
