INSERT INTO company_identities (kind, value, company_id)
SELECT k, v, $3 FROM unnest($1::text[], $2::text[]) AS t (k, v)
ON CONFLICT DO NOTHING
