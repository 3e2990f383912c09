{{lead_columns}} WHERE id = $1
