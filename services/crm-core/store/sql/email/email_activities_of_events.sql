-- The EMAIL activity each of the events $1 made, with its owner.
SELECT origin_event_id, id, owner_type, owner_id FROM activities
WHERE origin_event_id = ANY($1::text[]) AND type = 'EMAIL'
