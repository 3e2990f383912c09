DELETE FROM lead_statuses WHERE id = $1
