SELECT 1 FROM history
WHERE entity_type = $1 AND entity_id = $2 AND kind = 'CREATED' AND related_type = 'LEAD'
  AND related_id = $3
