DELETE FROM lead_sources WHERE id = $1
