SELECT id, entity_type, entity_id, kind, field, old_value, new_value,
  coalesce(related_type, ''), coalesce(related_id, 0), coalesce(user_id, 0),
  coalesce(event_id, ''), (extract(epoch FROM at) * 1000000)::bigint
FROM history
WHERE entity_type = $1 AND entity_id = $2 AND ($3::bigint = 0 OR id < $3::bigint)
ORDER BY id DESC LIMIT $4
