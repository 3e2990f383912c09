-- The lead becomes the success status (CONVERTED) and points at what it produced, and at the
-- contact (and company, $4, 0: none) it now belongs to, as ConvertLead sets them; the conversion
-- is recorded as ConvertLead records it.
WITH lead AS (
  UPDATE leads SET status = (SELECT id FROM lead_statuses WHERE semantics = 'SUCCESS'),
    converted_contact_id = $2, converted_deal_id = $3,
    converted_company_id = coalesce(nullif($4, 0), converted_company_id), contact_id = $2,
    company_id = coalesce(nullif($4, 0), company_id), version = version + 1, updated_at = now()
  WHERE id = $1 RETURNING id
)
INSERT INTO conversions (lead_id, produce, contact_id, company_id, deal_id)
SELECT id, 'CONTACT_DEAL', $2, nullif($4, 0), $3 FROM lead
