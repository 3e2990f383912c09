-- The exactly-once key: only ids returned here are new and get effects.
INSERT INTO processed_events (event_id) SELECT unnest($1::text[])
ON CONFLICT DO NOTHING RETURNING event_id
