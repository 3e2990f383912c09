-- Ends hold_acting_user.sql's hold of user $1 on this session.
SELECT pg_advisory_unlock_shared(hashtextextended('acting-user:' || $1::bigint, 0))
