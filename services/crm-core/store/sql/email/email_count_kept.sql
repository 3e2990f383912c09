-- How many messages are kept in each thread $1, counted up to $2, and on each record ($3 types,
-- $4 ids), counted up to $5: the caps on kept contents bound this work too.
SELECT 'THREAD', t, '', 0::bigint,
  (SELECT count(*) FROM (SELECT 1 FROM email_messages WHERE thread_key = t LIMIT $2) AS s)
FROM unnest($1::text[]) AS x (t)
UNION ALL
SELECT 'OWNER', '', ot, o,
  (SELECT count(*) FROM (SELECT 1 FROM email_messages WHERE owner_type = ot AND owner_id = o
                         LIMIT $5) AS s)
FROM unnest($3::text[], $4::bigint[]) AS x (ot, o)
