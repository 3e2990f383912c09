-- Returning leads made for a known contact or company point at it.
UPDATE leads AS l SET contact_id = NULLIF(x.c, 0), company_id = NULLIF(x.co, 0)
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS x (i, c, co)
WHERE l.id = x.i
