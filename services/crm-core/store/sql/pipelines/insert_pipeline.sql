INSERT INTO pipelines (name, sort) VALUES ($1, $2) RETURNING id
