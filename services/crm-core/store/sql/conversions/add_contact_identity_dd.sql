INSERT INTO contact_identities (kind, value, contact_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
