-- The unidentified calls, newest first, after the page token's id ($1, 0: the first page), of
-- one reason ($3; '': all). A row an earlier release wrote has no reason: an outbound call with
-- a number is OUTBOUND_UNKNOWN_NUMBER, anything else WITHHELD (what that release listed).
SELECT id, call_id, direction, outcome, from_number, to_number, line, duration_seconds, operator,
  recording_url, coalesce(responsible_user_id, 0), origin_event_id,
  (extract(epoch FROM created_at) * 1000000)::bigint,
  array_to_json(CASE WHEN cardinality(recording_urls) = 0 AND recording_url <> ''
    THEN ARRAY[recording_url] ELSE recording_urls END)::text,
  why,
  coalesce(extract(epoch FROM started_at)::bigint, 0),
  coalesce(extract(epoch FROM answered_at)::bigint, 0),
  coalesce(extract(epoch FROM ended_at)::bigint, 0)
FROM unidentified_calls,
  LATERAL (SELECT coalesce(reason, CASE WHEN direction = 'OUTBOUND' AND to_number <> ''
    THEN 'OUTBOUND_UNKNOWN_NUMBER' ELSE 'WITHHELD' END)) AS r (why)
WHERE ($1::bigint = 0 OR id < $1::bigint) AND ($3::text = '' OR why = $3::text)
ORDER BY id DESC LIMIT $2
