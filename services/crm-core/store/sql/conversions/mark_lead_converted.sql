UPDATE leads SET status = $2, converted_contact_id = nullif($3, 0),
  converted_company_id = nullif($4, 0), converted_deal_id = nullif($5, 0),
  contact_id = coalesce(nullif($3, 0), contact_id), company_id = coalesce(nullif($4, 0), company_id),
  version = version + 1, updated_at = now()
WHERE id = $1
