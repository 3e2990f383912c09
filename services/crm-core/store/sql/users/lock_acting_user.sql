-- Taken by a deactivation of user $1 until its commit: waits for the writes acting for the user
-- in flight (hold_acting_user.sql), and makes the ones starting meanwhile wait for the commit.
SELECT pg_advisory_xact_lock(hashtextextended('acting-user:' || $1::bigint, 0))
