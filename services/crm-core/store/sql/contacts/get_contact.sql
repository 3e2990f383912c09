{{contact_columns}}
WHERE c.id = $1
