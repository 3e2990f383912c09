-- The lead a write names, held until the transaction ends (HoldReferenced): FOR KEY SHARE waits
-- for a merge's or a delete's row lock (FOR UPDATE) and makes them wait for this transaction.
-- No row: it does not exist; else where it was merged (0: live), read after any such wait.
SELECT coalesce(merged_into, 0) FROM leads WHERE id = $1 FOR KEY SHARE
