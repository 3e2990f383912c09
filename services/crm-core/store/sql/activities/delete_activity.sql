-- Activity $1. Its received emails stay on the record (email_messages.activity_id: ON DELETE SET
-- NULL, read as 0); the calls a CALL activity held go with it (activity_calls: ON DELETE CASCADE).
DELETE FROM activities WHERE id = $1
