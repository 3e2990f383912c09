DELETE FROM company_identities WHERE company_id = $1
