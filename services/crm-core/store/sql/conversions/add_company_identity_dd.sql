INSERT INTO company_identities (kind, value, company_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
