UPDATE lead_statuses SET name = $2, sort = $3, semantics = $4 WHERE id = $1
