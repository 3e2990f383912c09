-- Timeline entries (history), one statement per batch of them.
INSERT INTO history (entity_type, entity_id, kind, related_type, related_id, user_id, event_id)
SELECT et, ei, k, NULLIF(rt, ''), NULLIF(ri, 0), NULLIF(u, 0), NULLIF(e, '')
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
  $7::text[]) AS x (et, ei, k, rt, ri, u, e)
