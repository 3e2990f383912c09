-- The columns store/deal_repository.cc's ReadDeal reads, in this order, with the stage's idle
-- threshold and the database's clock (idleness is decided by domain IsIdle against it).
SELECT d.id, d.title, d.pipeline_id, d.stage_id, d.stage_semantics, d.amount_minor, d.currency,
  coalesce(d.company_id, 0), coalesce(d.responsible_user_id, 0),
  coalesce(to_char(d.expected_close_date, 'YYYY-MM-DD'), ''), d.source_id, coalesce(d.lead_id, 0),
  (extract(epoch FROM d.last_activity_at) * 1000000)::bigint,
  (extract(epoch FROM d.stage_changed_at) * 1000000)::bigint,
  (extract(epoch FROM d.created_at) * 1000000)::bigint,
  (extract(epoch FROM d.updated_at) * 1000000)::bigint, d.version, coalesce(s.idle_days, 0),
  (extract(epoch FROM now()) * 1000000)::bigint,
  (SELECT coalesce(json_agg(c.contact_id ORDER BY c.contact_id), '[]') FROM deal_contacts c
    WHERE c.deal_id = d.id)::text
FROM deals d JOIN pipeline_stages s ON s.pipeline_id = d.pipeline_id AND s.id = d.stage_id
