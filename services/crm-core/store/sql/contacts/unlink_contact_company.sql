DELETE FROM contact_companies WHERE contact_id = $1 AND company_id = $2 RETURNING contact_id
