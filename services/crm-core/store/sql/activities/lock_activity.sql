-- Activity $1 locked until the transaction ends (UpdateActivity, DeleteActivity): its version,
-- the etag. No row: it does not exist.
SELECT version FROM activities WHERE id = $1 FOR UPDATE
