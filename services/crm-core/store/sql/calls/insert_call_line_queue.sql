INSERT INTO call_line_queues (line, queue_key) VALUES ($1, $2)
