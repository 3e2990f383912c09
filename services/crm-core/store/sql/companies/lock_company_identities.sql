-- Company $1 row-locked as an UPDATE of it locks it (FOR NO KEY UPDATE: a conversion holding it
-- FOR KEY SHARE does not wait for it), and the identities it holds, by kind and value (one row
-- with NULLs when it holds none; no row when it does not exist).
SELECT i.kind, i.value
FROM companies AS c
LEFT JOIN company_identities AS i ON i.company_id = c.id
WHERE c.id = $1
ORDER BY i.kind, i.value
FOR NO KEY UPDATE OF c
