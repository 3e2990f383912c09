-- User creations and email changes one at a time, so that an address checked free among users
-- is still free when it is written (users.email has no unique index: rows from before the check
-- may share one, and keep working).
SELECT pg_advisory_xact_lock(hashtextextended('user-emails', 0))
