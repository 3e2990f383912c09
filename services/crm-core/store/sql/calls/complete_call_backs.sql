-- An answered outbound call reached the person: the open call-backs of the records it matched
-- ($1 owner types, $2 owner ids, $3 the call's event id) and of the number it dialled ($4
-- numbers, $5 event ids) are done. Returns the deals touched.
WITH owners AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) AS o (t, id, e)),
  numbers AS (SELECT * FROM unnest($4::text[], $5::text[]) AS n (num, e))
UPDATE activities AS a SET completed = true, completed_at = now(),
  completed_by_event_id = coalesce(
    (SELECT e FROM owners WHERE t = a.owner_type AND id = a.owner_id LIMIT 1),
    (SELECT e FROM numbers WHERE num = a.call_number LIMIT 1))
WHERE a.call_back AND NOT a.completed
  AND ((a.owner_type, a.owner_id) IN (SELECT t, id FROM owners)
       OR a.call_number IN (SELECT num FROM numbers))
RETURNING a.owner_type, a.owner_id
