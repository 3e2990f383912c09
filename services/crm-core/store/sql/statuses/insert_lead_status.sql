INSERT INTO lead_statuses (id, name, sort, semantics) VALUES ($1, $2, $3, $4)
