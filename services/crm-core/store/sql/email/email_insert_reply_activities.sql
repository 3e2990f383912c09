-- Open EMAIL activities for replies whose thread has none open: owner, subject, description,
-- responsible (NULL: nobody), deadline in minutes from now (0: none), the reply's event id.
INSERT INTO activities (type, owner_type, owner_id, subject, description, responsible_user_id,
  completed, deadline, origin_event_id)
SELECT 'EMAIL', ot, o, s, d, r, false, CASE WHEN m > 0 THEN now() + make_interval(mins => m) END, e
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::int[],
  $7::text[]) AS x (ot, o, s, d, r, m, e)
RETURNING origin_event_id, id
