-- The unidentified calls, newest first, after the page token's id ($1, 0: the first page).
SELECT id, call_id, direction, outcome, from_number, to_number, line, duration_seconds, operator,
  recording_url, coalesce(responsible_user_id, 0), origin_event_id,
  (extract(epoch FROM created_at) * 1000000)::bigint,
  array_to_json(CASE WHEN cardinality(recording_urls) = 0 AND recording_url <> ''
    THEN ARRAY[recording_url] ELSE recording_urls END)::text
FROM unidentified_calls
WHERE ($1::bigint = 0 OR id < $1::bigint)
ORDER BY id DESC LIMIT $2
