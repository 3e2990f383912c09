INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  completed, deadline, completed_at, origin_event_id)
SELECT t, 'LEAD', o, s, d, r, c, CASE WHEN m > 0 THEN now() + make_interval(mins => m) END,
  CASE WHEN c THEN now() END, e
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bool[],
  $7::int[], $8::text[]) AS x (t, o, s, d, r, c, m, e)
