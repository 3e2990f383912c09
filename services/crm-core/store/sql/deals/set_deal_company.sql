UPDATE deals SET company_id = nullif($2, 0), version = version + 1, updated_at = now()
WHERE id = $1
