UPDATE lead_sources SET name = $2, sort = $3 WHERE id = $1
