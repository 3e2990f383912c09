-- The columns store/contact_repository.cc's ReadContact reads, in this order.
SELECT c.id, c.first_name, c.last_name, c.position, coalesce(c.responsible_user_id, 0),
  c.source_id, c.comments, coalesce(c.origin_event_id, ''), c.version,
  (extract(epoch FROM c.created_at) * 1000000)::bigint,
  (extract(epoch FROM c.updated_at) * 1000000)::bigint, coalesce(c.merged_into, 0),
  (SELECT coalesce(json_agg(json_build_array(i.kind, i.value) ORDER BY i.kind, i.value), '[]')
     FROM contact_identities AS i WHERE i.contact_id = c.id)::text,
  (SELECT coalesce(json_agg(json_build_array(l.company_id, l.role,
       (extract(epoch FROM l.created_at) * 1000000)::bigint) ORDER BY l.company_id), '[]')
     FROM contact_companies AS l WHERE l.contact_id = c.id)::text,
  (SELECT coalesce(json_agg(d.deal_id ORDER BY d.deal_id), '[]')
     FROM deal_contacts AS d WHERE d.contact_id = c.id)::text
FROM contacts AS c
