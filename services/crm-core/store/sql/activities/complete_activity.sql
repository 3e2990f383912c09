-- Only an open activity: a completed one keeps its version and completion time.
UPDATE activities SET completed = true, completed_at = coalesce(completed_at, now())
WHERE id = $1 AND NOT completed RETURNING id
