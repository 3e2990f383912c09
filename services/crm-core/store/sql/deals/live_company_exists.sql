SELECT 1 FROM companies WHERE id = $1 AND merged_into IS NULL
