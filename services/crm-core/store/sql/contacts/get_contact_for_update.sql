{{contact_columns}}
WHERE c.id = $1 FOR UPDATE OF c
