INSERT INTO lead_identities (kind, value, lead_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING
