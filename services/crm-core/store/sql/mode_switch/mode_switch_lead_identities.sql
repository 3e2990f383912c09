-- Lead $1's identities, by kind and value: what the switch gives the contact it converts into.
SELECT kind, value FROM lead_identities WHERE lead_id = $1 ORDER BY kind, value
