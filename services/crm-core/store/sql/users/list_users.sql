{{user_columns}} WHERE id > $1 ORDER BY id LIMIT $2
