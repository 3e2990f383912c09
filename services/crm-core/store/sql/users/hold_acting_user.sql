-- Holds user $1 as the acting user of a write on this session, until release_acting_user.sql: a
-- deactivation (lock_acting_user.sql) waits for the writes in flight, and the writes after it
-- see the user inactive.
SELECT pg_advisory_lock_shared(hashtextextended('acting-user:' || $1::bigint, 0))
