-- The columns store/activity_repository.cc's ReadActivity reads, in this order.
SELECT id, type, owner_type, owner_id, subject, description, coalesce(responsible_user_id, 0),
  completed, (extract(epoch FROM deadline) * 1000000)::bigint,
  (extract(epoch FROM created_at) * 1000000)::bigint,
  coalesce((extract(epoch FROM completed_at) * 1000000)::bigint, 0), coalesce(origin_event_id, ''),
  call_id IS NOT NULL, coalesce(call_id, ''), coalesce(call_direction, ''),
  coalesce(call_outcome, ''), coalesce(call_number, ''), coalesce(call_line, ''),
  coalesce(call_duration_seconds, 0), coalesce(call_operator, ''),
  coalesce(call_recording_url, ''), call_back, missed_calls,
  coalesce((extract(epoch FROM last_attempt_at) * 1000000)::bigint, 0),
  coalesce(completed_by_event_id, ''),
  array_to_json(CASE WHEN cardinality(call_recording_urls) = 0 AND call_recording_url IS NOT NULL
    THEN ARRAY[call_recording_url] ELSE call_recording_urls END)::text,
  coalesce(extract(epoch FROM call_started_at)::bigint, 0),
  coalesce(extract(epoch FROM call_answered_at)::bigint, 0),
  coalesce(extract(epoch FROM call_ended_at)::bigint, 0), version
FROM activities
