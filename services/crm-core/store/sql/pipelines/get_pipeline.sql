SELECT id, name, sort, version, (extract(epoch FROM created_at) * 1000000)::bigint,
  (extract(epoch FROM updated_at) * 1000000)::bigint
FROM pipelines WHERE id = $1
