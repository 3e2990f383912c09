SELECT 1 FROM lead_statuses WHERE id = $1
