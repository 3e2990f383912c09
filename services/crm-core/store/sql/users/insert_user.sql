INSERT INTO users (name, email, active, extension) VALUES ($1, $2, $3, nullif($4, '')) RETURNING id
