-- Contacts made by inbound traffic, ids allocated: names, folded search keys, responsible,
-- source, comments, origin event.
INSERT INTO contacts (id, first_name, last_name, search_first_last, search_last_first,
  responsible_user_id, source_id, comments, origin_event_id)
SELECT i, f, l, fl, lf, NULLIF(r, 0), s, c, e
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
  $7::text[], $8::text[], $9::text[]) AS x (i, f, l, fl, lf, r, s, c, e)
