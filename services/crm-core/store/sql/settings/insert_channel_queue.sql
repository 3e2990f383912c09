INSERT INTO channel_queues (channel, queue_key) VALUES ($1, $2)
