INSERT INTO lead_identities (kind, value, lead_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
