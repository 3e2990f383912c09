INSERT INTO contact_companies (contact_id, company_id, role) VALUES ($1, $2, $3)
ON CONFLICT (contact_id, company_id) DO UPDATE SET role = excluded.role
