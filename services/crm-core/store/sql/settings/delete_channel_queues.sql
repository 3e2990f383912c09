DELETE FROM channel_queues
