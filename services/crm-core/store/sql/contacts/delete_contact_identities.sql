DELETE FROM contact_identities WHERE contact_id = $1
