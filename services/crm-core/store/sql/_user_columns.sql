SELECT id, name, email, active, (extract(epoch FROM created_at) * 1000000)::bigint,
  coalesce(extension, '') FROM users
