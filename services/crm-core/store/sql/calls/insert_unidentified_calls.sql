-- Calls nobody can be matched to (withheld numbers, SIP users, outbound calls to unknown
-- numbers), once per event.
INSERT INTO unidentified_calls (call_id, direction, outcome, from_number, to_number, line,
  duration_seconds, operator, recording_url, responsible_user_id, origin_event_id)
SELECT ci, dir, oc, f, t, l, dur, op, rec, nullif(r, 0), e
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[],
  $8::text[], $9::text[], $10::bigint[], $11::text[])
  AS x (ci, dir, oc, f, t, l, dur, op, rec, r, e)
ON CONFLICT (origin_event_id) DO NOTHING
