-- The leads of a merge, locked in id order: id, where merged (0: not), converted.
SELECT id, coalesce(merged_into, 0),
  status = 'CONVERTED' OR converted_contact_id IS NOT NULL OR converted_company_id IS NOT NULL
    OR converted_deal_id IS NOT NULL
FROM leads WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
