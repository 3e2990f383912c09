-- The columns store/activity_repository.cc's ReadActivity reads, in this order.
SELECT id, type, owner_type, owner_id, subject, description, coalesce(responsible_user_id, 0),
  completed, coalesce((extract(epoch FROM deadline) * 1000000)::bigint, 0),
  (extract(epoch FROM created_at) * 1000000)::bigint,
  coalesce((extract(epoch FROM completed_at) * 1000000)::bigint, 0), coalesce(origin_event_id, '')
FROM activities
