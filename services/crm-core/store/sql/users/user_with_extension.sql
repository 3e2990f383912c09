-- The user other than $2 whose phone extension is $1 (users_extension: at most one).
SELECT id FROM users WHERE extension = $1 AND id <> $2 LIMIT 1
