SELECT kind, value FROM lead_identities WHERE lead_id = $1 ORDER BY kind, value
