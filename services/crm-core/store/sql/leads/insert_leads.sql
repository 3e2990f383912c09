-- Leads of an inbound batch, with their folded search keys (naming FoldForSearch), so that
-- SearchService finds them by name like the leads the API creates.
INSERT INTO leads (id, title, source, first_name, last_name, company_name, city, comments,
  source_details, responsible_user_id, repeat_count, is_returning, previous_lead_id,
  origin_event_id, search_name, search_company)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
  $7::text[], $8::text[], $9::jsonb[], $10::bigint[], $11::int[], $12::bool[], $13::bigint[],
  $14::text[], $15::text[], $16::text[])
