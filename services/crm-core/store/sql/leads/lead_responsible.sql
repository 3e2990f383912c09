SELECT coalesce(responsible_user_id, 0) FROM leads WHERE id = $1
