-- The members of one queue, which UpdateSettings then lists anew; other queues keep theirs.
DELETE FROM assignment_queue_members WHERE queue_key = $1
