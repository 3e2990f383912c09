-- The active users a batch's call operators name: by phone extension ($1), or by e-mail ($2,
-- lower-cased).
SELECT 'EXTENSION', extension, id FROM users WHERE active AND extension = ANY($1::text[])
UNION ALL
SELECT 'EMAIL', lower(email), id FROM users
WHERE active AND email <> '' AND lower(email) = ANY($2::text[])
