-- The active members of these queues, in rotation order.
SELECT m.queue_key, m.user_id FROM assignment_queue_members AS m
JOIN users AS u ON u.id = m.user_id AND u.active
WHERE m.queue_key = ANY ($1::text[])
ORDER BY m.queue_key, m.sort, m.user_id
