INSERT INTO users (name, email, active) VALUES ($1, $2, $3) RETURNING id
