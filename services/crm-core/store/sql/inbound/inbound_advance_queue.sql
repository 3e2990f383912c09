-- Takes $2 positions of one queue (made on first use) and returns the first. Run in a short
-- transaction of its own, never in a batch's: the row is locked for this statement only, and
-- writers of other queues never meet on it.
INSERT INTO assignment_queues AS q (queue_key, position) VALUES ($1, $2)
ON CONFLICT (queue_key) DO UPDATE SET position = q.position + $2
RETURNING position - $2
