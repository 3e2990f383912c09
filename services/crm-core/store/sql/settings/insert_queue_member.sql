INSERT INTO assignment_queue_members (queue_key, user_id, sort) VALUES ($1, $2, $3)
