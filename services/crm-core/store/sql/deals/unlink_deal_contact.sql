DELETE FROM deal_contacts WHERE deal_id = $1 AND contact_id = $2
