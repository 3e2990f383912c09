INSERT INTO contact_identities (kind, value, contact_id)
SELECT kind, value, $2 FROM lead_identities WHERE lead_id = $1
ON CONFLICT DO NOTHING
