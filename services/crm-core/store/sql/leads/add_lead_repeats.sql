UPDATE leads AS l SET repeat_count = l.repeat_count + d.n, updated_at = now(),
  version = l.version + 1
FROM unnest($1::bigint[], $2::int[]) AS d (id, n) WHERE l.id = d.id
