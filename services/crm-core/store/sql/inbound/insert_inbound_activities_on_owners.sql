-- Activities of inbound events on any owner (LEAD, CONTACT, COMPANY, DEAL), each with its
-- deadline in minutes from now (0: none).
INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  completed, deadline, completed_at, origin_event_id)
SELECT t, ot, o, s, d, r, c, CASE WHEN m > 0 THEN now() + make_interval(mins => m) END,
  CASE WHEN c THEN now() END, e
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
  $7::bool[], $8::int[], $9::text[]) AS x (t, ot, o, s, d, r, c, m, e)
