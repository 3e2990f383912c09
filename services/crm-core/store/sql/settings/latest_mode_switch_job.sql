SELECT id, to_mode, state, total, done, failed, error,
  (extract(epoch FROM started_at) * 1000000)::bigint,
  coalesce((extract(epoch FROM finished_at) * 1000000)::bigint, 0),
  array_to_string(failed_lead_ids, ','), failure
FROM mode_switch_jobs ORDER BY id DESC LIMIT 1
