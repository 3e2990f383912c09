-- The columns store/lead_repository.cc's ReadLead reads, in this order: a page of leads is one
-- query, identities included.
SELECT id, title, status, source, first_name, last_name, company_name, city, comments,
  coalesce(responsible_user_id, 0), repeat_count, is_returning, coalesce(previous_lead_id, 0),
  source_details::text, (extract(epoch FROM created_at) * 1000000)::bigint,
  (extract(epoch FROM updated_at) * 1000000)::bigint, version,
  (SELECT coalesce(json_agg(value ORDER BY value), '[]') FROM lead_identities
    WHERE lead_id = leads.id AND kind = 'PHONE')::text,
  (SELECT coalesce(json_agg(value ORDER BY value), '[]') FROM lead_identities
    WHERE lead_id = leads.id AND kind = 'EMAIL')::text,
  coalesce(contact_id, 0), coalesce(company_id, 0), coalesce(converted_contact_id, 0),
  coalesce(converted_company_id, 0), coalesce(converted_deal_id, 0)
FROM leads
