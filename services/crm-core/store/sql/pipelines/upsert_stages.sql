-- The pipeline's whole stage list in one statement, so the deferrable unique sort constraint is
-- checked once the new positions are all in place. Semantics never changes on an existing stage.
INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics, idle_days)
SELECT $1, t.id, t.name, t.sort, t.semantics, nullif(t.idle_days, 0)
FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::int[])
  AS t(id, name, sort, semantics, idle_days)
ON CONFLICT (pipeline_id, id) DO UPDATE
  SET name = excluded.name, sort = excluded.sort, idle_days = excluded.idle_days
