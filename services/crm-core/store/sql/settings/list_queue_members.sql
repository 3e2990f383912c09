-- Every queue with its members in rotation order (a queue without members: one row, user 0).
SELECT q.queue_key, coalesce(m.user_id, 0)
FROM assignment_queues q LEFT JOIN assignment_queue_members m ON m.queue_key = q.queue_key
ORDER BY q.queue_key, m.sort, m.user_id
