UPDATE activities SET completed = true, completed_at = coalesce(completed_at, now())
WHERE id = $1 RETURNING id
