{{company_columns}}
WHERE c.id = $1
