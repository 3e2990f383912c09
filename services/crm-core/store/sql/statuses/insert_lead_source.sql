INSERT INTO lead_sources (id, name, sort) VALUES ($1, $2, $3)
