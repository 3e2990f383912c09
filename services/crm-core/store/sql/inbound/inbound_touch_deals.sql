-- An inbound activity on these deals: idleness counts from now.
UPDATE deals SET last_activity_at = now() WHERE id = ANY ($1::bigint[])
