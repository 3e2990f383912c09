SELECT id FROM users WHERE active ORDER BY id
