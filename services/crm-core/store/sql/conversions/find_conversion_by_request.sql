SELECT lead_id, coalesce(contact_id, 0), coalesce(company_id, 0), coalesce(deal_id, 0), produce,
  coalesce(request, '')
FROM conversions WHERE request_id = $1
