-- The columns store/company_repository.cc's ReadCompany reads, in this order.
SELECT c.id, c.name, c.industry, c.website, coalesce(c.responsible_user_id, 0), c.source_id,
  c.comments, coalesce(c.origin_event_id, ''), c.version,
  (extract(epoch FROM c.created_at) * 1000000)::bigint,
  (extract(epoch FROM c.updated_at) * 1000000)::bigint, coalesce(c.merged_into, 0),
  (SELECT coalesce(json_agg(json_build_array(i.kind, i.value) ORDER BY i.kind, i.value), '[]')
     FROM company_identities AS i WHERE i.company_id = c.id)::text,
  (SELECT coalesce(json_agg(json_build_array(l.contact_id, l.role,
       (extract(epoch FROM l.created_at) * 1000000)::bigint) ORDER BY l.contact_id), '[]')
     FROM contact_companies AS l WHERE l.company_id = c.id)::text,
  (SELECT coalesce(json_agg(d.id ORDER BY d.id), '[]') FROM deals AS d WHERE d.company_id = c.id)::text
FROM companies AS c
