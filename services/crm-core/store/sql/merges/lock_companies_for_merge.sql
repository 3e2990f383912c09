-- The companies of a merge, locked in id order: id, where merged (0: not), converted (never).
SELECT id, coalesce(merged_into, 0), false
FROM companies WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
