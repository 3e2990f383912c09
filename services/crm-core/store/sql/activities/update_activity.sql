-- UpdateActivity's new values for activity $1 (the version moves by 0030's trigger): subject,
-- description, responsible (0: none), deadline ($8 false: kept as stored; else $5 false: none, $6
-- micros), completed ($7). Completing keeps an earlier completion time; reopening clears it and
-- the event that completed a call-back (it no longer is).
UPDATE activities SET subject = $2, description = $3, responsible_user_id = NULLIF($4::bigint, 0),
  deadline = CASE WHEN NOT $8::boolean THEN deadline
                  WHEN $5::boolean THEN to_timestamp($6::bigint / 1000000.0) END,
  completed = $7::boolean,
  completed_at = CASE WHEN $7::boolean THEN coalesce(completed_at, now()) END,
  completed_by_event_id = CASE WHEN $7::boolean THEN completed_by_event_id END
WHERE id = $1
