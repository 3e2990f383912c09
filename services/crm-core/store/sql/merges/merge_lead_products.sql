-- What the converted leads among a merge's leads produced (their rows are locked already):
-- id, contact, company, deal (0: none).
SELECT id, coalesce(converted_contact_id, 0), coalesce(converted_company_id, 0),
  coalesce(converted_deal_id, 0)
FROM leads WHERE id = ANY($1::bigint[])
