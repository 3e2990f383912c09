-- Corrections to the CRM domain's schema (0004). Written for a rolling upgrade
-- (docs/operations.md, "Migrations and rolling upgrades"): the previous release keeps running
-- against this schema until every replica is replaced, so nothing it writes or reads changes
-- meaning, and this migration holds its locks only for the time of a few catalogue changes.

-- 1. Contacts, companies and deals name their source by lead_sources id, '' for none. 0004 left
-- the column without a foreign key (it could run before 0003 made lead_sources), so an unknown id
-- could be stored and a source still used could be deleted.
--
-- The column keeps its values and its '' for none, which the previous release writes and reads;
-- source_ref holds the same id or NULL for none and carries the foreign key, so '' needs no row
-- in lead_sources and no writer has to change. source_ref is a plain column kept by a trigger,
-- not a stored generated column: adding one of those rewrites the whole table under ACCESS
-- EXCLUSIVE. The trigger sets it on every insert and on every update naming source_id or
-- source_ref, so it cannot disagree with source_id (a value written to it directly is
-- overwritten). The foreign keys are NOT VALID here: enforced from this commit on for every row
-- written, by either release; the rows already there are cleaned up, filled in and validated by
-- 0008, and their indexes built concurrently by 0010.
ALTER TABLE contacts ADD COLUMN source_ref text;
ALTER TABLE companies ADD COLUMN source_ref text;
ALTER TABLE deals ADD COLUMN source_ref text;

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

ALTER TABLE contacts ADD CONSTRAINT contacts_source_fkey
  FOREIGN KEY (source_ref) REFERENCES lead_sources (id) NOT VALID;
ALTER TABLE companies ADD CONSTRAINT companies_source_fkey
  FOREIGN KEY (source_ref) REFERENCES lead_sources (id) NOT VALID;
ALTER TABLE deals ADD CONSTRAINT deals_source_fkey
  FOREIGN KEY (source_ref) REFERENCES lead_sources (id) NOT VALID;

-- 2. When two pipeline names, or two stage names of one pipeline, are the same name is decided by
-- one rule, the domain's NameKey (Unicode case folding, accents and compatibility forms unified,
-- every kind of whitespace collapsed): stage edits hold their pipeline's row lock, and pipeline
-- creations and renames take the 'pipeline-names' advisory lock
-- (store/sql/pipelines/lock_pipeline_names.sql). The lower(btrim()) unique indexes of 0004,
-- pipelines_name and pipeline_stages_name, are kept for now: the previous release relies on them
-- for its uniqueness while it still runs. They are dropped by the first migration of the release
-- after this one (the "contract" step), once no replica of the previous release is left. Until
-- then they may refuse a name the domain would accept (as a constraint error, ALREADY_EXISTS).
