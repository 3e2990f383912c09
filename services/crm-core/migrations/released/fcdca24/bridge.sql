-- Brings a database migrated by release fcdca24 (this directory's 0005–0007, applied before
-- they were rewritten in place) to what the current 0005–0007 make, so that 0008 onwards apply
-- to it as to any other. Run by `crm-core migrate` in one transaction, with lock_timeout and its
-- retries, before the first pending migration; it records the current checksums of 0005–0007 in
-- the same transaction (docs/operations.md, "Databases of release fcdca24").
--
-- Every lock here is brief: no statement rewrites or scans a large table.
--
-- What differs, and what is left as it is:
-- - 0007's source_ref is a stored generated column there, a plain column kept by a trigger
--   here. DROP EXPRESSION keeps the stored values and the table's file (no rewrite: the values
--   are already on disk); the trigger then keeps them as the generated expression did, for the
--   writes of either release. The foreign keys on it stay as they are (already validated).
-- - 0004's pipelines_name and pipeline_stages_name were dropped by fcdca24's 0007; the current
--   one keeps them until the next release. They are built again here (pipelines and their
--   stages are a few rows of configuration).
-- - The CHECKs 0006 adds NOT VALID are valid there already, and the indexes 0009 and 0010 build
--   exist already with the same definitions (both write IF NOT EXISTS): nothing to do; 0012's
--   VALIDATE of a valid constraint is a no-op.
-- - The data clean-up fcdca24's 0007 did is what 0008 does: 0008 finds nothing left to do.

ALTER TABLE contacts ALTER COLUMN source_ref DROP EXPRESSION;
ALTER TABLE companies ALTER COLUMN source_ref DROP EXPRESSION;
ALTER TABLE deals ALTER COLUMN source_ref DROP EXPRESSION;

-- As in the current 0007.
CREATE FUNCTION set_source_ref() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.source_ref := NULLIF(NEW.source_id, '');
  RETURN NEW;
END
$$;
CREATE TRIGGER contacts_source_ref BEFORE INSERT OR UPDATE OF source_id, source_ref ON contacts
  FOR EACH ROW EXECUTE FUNCTION set_source_ref();
CREATE TRIGGER companies_source_ref BEFORE INSERT OR UPDATE OF source_id, source_ref ON companies
  FOR EACH ROW EXECUTE FUNCTION set_source_ref();
CREATE TRIGGER deals_source_ref BEFORE INSERT OR UPDATE OF source_id, source_ref ON deals
  FOR EACH ROW EXECUTE FUNCTION set_source_ref();

-- fcdca24 decided name uniqueness by the domain's NameKey alone, which treats as the same name
-- everything lower(btrim()) does in practice; a pair it let through that lower(btrim()) calls
-- the same would make the unique index fail with a bare duplicate-key error, so it is named
-- first, and nothing of this bridge is applied. SHARE is the lock the index builds take anyway;
-- taken first, no name can change between the check and the builds.
LOCK TABLE pipelines, pipeline_stages IN SHARE MODE;
DO $$
DECLARE
  clash text;
BEGIN
  SELECT string_agg(format('pipelines %s', ids), '; ') INTO clash
  FROM (SELECT string_agg(format('%s %L', id, name), ' and ' ORDER BY id) AS ids
        FROM pipelines GROUP BY lower(btrim(name)) HAVING count(*) > 1) AS same;
  IF clash IS NOT NULL THEN
    RAISE EXCEPTION 'pipeline names the same under lower(btrim(name)), which this release '
      'still enforces (pipelines_name): %; rename one of each pair with the previous release '
      'and run migrate again', clash;
  END IF;
  SELECT string_agg(format('pipeline %s: stages %s', pipeline_id, ids), '; ') INTO clash
  FROM (SELECT pipeline_id, string_agg(format('%s %L', id, name), ' and ' ORDER BY id) AS ids
        FROM pipeline_stages GROUP BY pipeline_id, lower(btrim(name)) HAVING count(*) > 1) AS same;
  IF clash IS NOT NULL THEN
    RAISE EXCEPTION 'stage names the same under lower(btrim(name)), which this release still '
      'enforces (pipeline_stages_name): %; rename one of each pair with the previous release '
      'and run migrate again', clash;
  END IF;
END
$$;
CREATE UNIQUE INDEX pipelines_name ON pipelines (lower(btrim(name)));
CREATE UNIQUE INDEX pipeline_stages_name ON pipeline_stages (pipeline_id, lower(btrim(name)));
