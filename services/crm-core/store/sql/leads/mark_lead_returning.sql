-- A lead CreateLead made for a returning customer (upsert_by_identity): marked returning and
-- linked to the earlier lead, contact and company it returns to, as inbound traffic's are.
UPDATE leads SET is_returning = true, previous_lead_id = NULLIF($2::bigint, 0),
  contact_id = NULLIF($3::bigint, 0), company_id = NULLIF($4::bigint, 0)
WHERE id = $1
