-- The calls each CALL activity holds ($1 call ids, $2 activity ids; one row per call id): a
-- call-back holds every missed call folded into it. A call id seen again (another event of the
-- same call) moves to its latest activity.
INSERT INTO activity_calls (call_id, activity_id)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (call_id) DO UPDATE SET activity_id = excluded.activity_id
