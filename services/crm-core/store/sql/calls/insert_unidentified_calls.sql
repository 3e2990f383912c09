-- Calls nobody can be matched to (withheld numbers, SIP users, outbound calls to unknown
-- numbers: $12, the reason), once per event. The call's start, answer and end ($13–$15, seconds
-- since the epoch; 0: not given) as upsert_call_activities keeps them.
INSERT INTO unidentified_calls (call_id, direction, outcome, from_number, to_number, line,
  duration_seconds, operator, recording_url, responsible_user_id, origin_event_id, reason,
  started_at, answered_at, ended_at)
SELECT ci, dir, oc, f, t, l, dur, op, rec, nullif(r, 0), e, why,
  CASE WHEN sa > 0 AND sa < extract(epoch FROM now()) + 86400 THEN to_timestamp(sa) END,
  CASE WHEN aa > 0 AND aa < extract(epoch FROM now()) + 86400 THEN to_timestamp(aa) END,
  CASE WHEN ea > 0 AND ea < extract(epoch FROM now()) + 86400 THEN to_timestamp(ea) END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
  $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::bigint[], $14::bigint[],
  $15::bigint[])
  AS x (ci, dir, oc, f, t, l, dur, op, rec, r, e, why, sa, aa, ea)
ON CONFLICT (origin_event_id) DO NOTHING
