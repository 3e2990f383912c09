-- Unidentified calls past their retention ($1 days), at most $2 a statement: the oldest rows by
-- id (ids follow insertion time), so each statement reads a bounded slice of the primary key
-- whatever the table's size. Returns the rows deleted.
WITH oldest AS (SELECT id, created_at FROM unidentified_calls ORDER BY id LIMIT $2)
DELETE FROM unidentified_calls AS u USING oldest AS o
WHERE u.id = o.id AND o.created_at < now() - make_interval(days => $1::int)
RETURNING u.id
