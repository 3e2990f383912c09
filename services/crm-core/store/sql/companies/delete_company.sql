WITH gone AS (DELETE FROM activities WHERE owner_type = 'COMPANY' AND owner_id = $1)
DELETE FROM companies WHERE id = $1
