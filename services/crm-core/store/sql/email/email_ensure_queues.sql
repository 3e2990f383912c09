-- The queues email routes name, created when missing (as the channel queues are).
INSERT INTO assignment_queues (queue_key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING
