{{deal_columns}} WHERE d.id = $1
