INSERT INTO assignment_queues (queue_key) VALUES ($1) ON CONFLICT DO NOTHING
