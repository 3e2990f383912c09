INSERT INTO contact_identities (kind, value, contact_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
ON CONFLICT DO NOTHING
