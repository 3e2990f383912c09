-- The user other than $2 whose email is $1, compared as call operators are matched (lower()).
SELECT id FROM users WHERE email <> '' AND lower(email) = lower($1) AND id <> $2 ORDER BY id LIMIT 1
