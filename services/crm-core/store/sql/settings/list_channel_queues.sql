SELECT channel, queue_key FROM channel_queues ORDER BY channel
