-- Deals made by inbound traffic, ids allocated, in a PROCESS stage of their pipeline; their
-- contact and company links and the creation row of their stage history come with them.
WITH made AS (
  INSERT INTO deals (id, title, pipeline_id, stage_id, stage_semantics, company_id,
    responsible_user_id, source_id, lead_id, origin_event_id)
  SELECT i, t, p, st, 'PROCESS', NULLIF(co, 0), NULLIF(r, 0), s, NULLIF(l, 0), e
  FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[],
    $7::text[], $8::bigint[], $9::text[]) AS x (i, t, p, st, co, r, s, l, e)
  RETURNING id, pipeline_id, stage_id, origin_event_id
), linked AS (
  INSERT INTO deal_contacts (deal_id, contact_id)
  SELECT d, c FROM unnest($1::bigint[], $10::bigint[]) AS y (d, c) WHERE c <> 0
)
INSERT INTO deal_stage_history (deal_id, to_pipeline_id, to_stage_id, event_id)
SELECT id, pipeline_id, stage_id, origin_event_id FROM made
