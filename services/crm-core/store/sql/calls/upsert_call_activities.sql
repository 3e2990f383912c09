-- CALL activities of call events, with the call's facts. An open call-back (call_back, not
-- completed) meets the one its record may already have on activities_one_open_call_back, and is
-- folded into it: one more missed call, its time, the latest call's outcome and description.
-- The caller passes at most one open call-back per record in one execution. Returns each row
-- written (inserted: a new activity, else a call-back folded into the open one).
-- A call-back's deadline counts from its first call ($20) and its last attempt is its latest call
-- ($21), both as the provider timed them (seconds since the epoch; 0: unknown, now), never later
-- than now: a time in the future (a skewed or hostile clock) cannot postpone a deadline.
-- The call's own start, answer and end ($22–$24, the latest call's; 0: not given) are shown as
-- given, unless more than a day ahead of now (then unknown, NULL): never an out-of-range
-- timestamp failing the batch.
-- A call-back whose latest missed call happened before an answered call already on its record
-- asks for nothing: the person was reached after it (its event came late: a PBX posting late, a
-- call published at its expiry). The writer finds that call first (reached_call_backs) and passes
-- its event ($25; empty: none): the call-back is written completed by it, and so never meets the
-- record's open call-back, which a missed call after the answer made.
INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  completed, deadline, completed_at, origin_event_id, call_back, call_id, call_direction,
  call_outcome, call_number, call_line, call_duration_seconds, call_operator, call_recording_url,
  missed_calls, last_attempt_at, completed_by_event_id, call_started_at, call_answered_at,
  call_ended_at)
SELECT 'CALL', ot, o, s, d, nullif(r, 0), c OR rb <> '',
  CASE WHEN m > 0 THEN first_at + make_interval(mins => m) END,
  CASE WHEN c OR rb <> '' THEN now() END, e, cb, ci, dir, oc, nullif(num, ''),
  nullif(line, ''), dur, nullif(op, ''), nullif(rec, ''), n, CASE WHEN n > 0 THEN last_at END,
  coalesce(nullif(ce, ''), nullif(rb, '')), started, answered, ended
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bool[], $7::int[],
  $8::text[], $9::bool[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
  $15::int[], $16::text[], $17::text[], $18::int[], $19::text[], $20::bigint[], $21::bigint[],
  $22::bigint[], $23::bigint[], $24::bigint[], $25::text[])
  AS x (ot, o, s, d, r, c, m, e, cb, ci, dir, oc, num, line, dur, op, rec, n, ce, f, l, sa, aa,
    ea, rb),
  LATERAL (SELECT
    CASE WHEN f > 0 AND f < extract(epoch FROM now()) THEN to_timestamp(f) ELSE now() END,
    CASE WHEN l > 0 AND l < extract(epoch FROM now()) THEN to_timestamp(l) ELSE now() END)
  AS t (first_at, last_at),
  LATERAL (SELECT
    CASE WHEN sa > 0 AND sa < extract(epoch FROM now()) + 86400 THEN to_timestamp(sa) END,
    CASE WHEN aa > 0 AND aa < extract(epoch FROM now()) + 86400 THEN to_timestamp(aa) END,
    CASE WHEN ea > 0 AND ea < extract(epoch FROM now()) + 86400 THEN to_timestamp(ea) END)
  AS times (started, answered, ended)
ON CONFLICT (owner_type, owner_id) WHERE call_back AND NOT completed DO UPDATE SET
  missed_calls = activities.missed_calls + excluded.missed_calls,
  last_attempt_at = greatest(activities.last_attempt_at, excluded.last_attempt_at),
  description = excluded.description,
  call_id = excluded.call_id,
  call_outcome = excluded.call_outcome,
  call_recording_url = coalesce(excluded.call_recording_url, activities.call_recording_url),
  call_started_at = excluded.call_started_at,
  call_answered_at = excluded.call_answered_at,
  call_ended_at = excluded.call_ended_at
RETURNING id, owner_type, owner_id, coalesce(origin_event_id, ''), call_back, completed,
  (xmax = 0) AS inserted
