{{activity_columns}} WHERE id = $1
