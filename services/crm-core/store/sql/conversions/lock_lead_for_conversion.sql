-- The lead to convert, locked; with its status's semantics and what it produced before.
SELECT l.id, l.title, l.status, s.semantics, l.first_name, l.last_name, l.company_name,
  l.source, coalesce(l.responsible_user_id, 0), coalesce(l.converted_contact_id, 0),
  coalesce(l.converted_company_id, 0), coalesce(l.converted_deal_id, 0),
  coalesce(l.merged_into, 0)
FROM leads l JOIN lead_statuses s ON s.id = l.status WHERE l.id = $1 FOR UPDATE OF l
