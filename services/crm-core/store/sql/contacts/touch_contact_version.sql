-- Identities were added to contact $1: a new etag (an update made with the one read before is
-- ABORTED instead of dropping them) and update time.
UPDATE contacts SET version = version + 1, updated_at = now() WHERE id = $1
