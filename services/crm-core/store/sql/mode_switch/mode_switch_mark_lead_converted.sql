-- The lead becomes the success status (CONVERTED) and points at what it produced; the conversion
-- is recorded as ConvertLead records it.
WITH lead AS (
  UPDATE leads SET status = (SELECT id FROM lead_statuses WHERE semantics = 'SUCCESS'),
    converted_contact_id = $2, converted_deal_id = $3, version = version + 1, updated_at = now()
  WHERE id = $1 RETURNING id
)
INSERT INTO conversions (lead_id, produce, contact_id, deal_id)
SELECT id, 'CONTACT_DEAL', $2, $3 FROM lead
