{{user_columns}} WHERE id = $1
