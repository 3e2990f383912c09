SELECT 1 FROM lead_sources WHERE id = $1
