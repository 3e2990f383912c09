SELECT 1 FROM contacts WHERE id = $1 AND merged_into IS NULL
