INSERT INTO history (entity_type, entity_id, kind, field, old_value, new_value, related_type,
  related_id, user_id, event_id)
SELECT t, e, k, f, o, n, NULLIF(rt, ''), NULLIF(ri, 0), NULLIF(u, 0), NULLIF(ev, '')
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::bigint[], $9::bigint[], $10::text[])
  AS r (t, e, k, f, o, n, rt, ri, u, ev)
