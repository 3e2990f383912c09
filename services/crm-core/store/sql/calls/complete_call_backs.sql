-- An answered outbound call reached the person: the open call-backs of these records are done
-- ($1 owner types, $2 owner ids, $3 the call's event id): the records it matched, their open
-- deals, and the records holding the phone identity it dialled (call_phone_holders), as the
-- writer placed the call in its batch. Returns the records touched.
WITH holders AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) AS o (t, id, e))
UPDATE activities AS a SET completed = true, completed_at = now(),
  completed_by_event_id =
    (SELECT e FROM holders AS h WHERE h.t = a.owner_type AND h.id = a.owner_id LIMIT 1)
WHERE a.call_back AND NOT a.completed
  AND (a.owner_type, a.owner_id) IN (SELECT t, id FROM holders)
RETURNING a.owner_type, a.owner_id
