-- Corrections to the CRM domain's schema (0004). Written for a rolling upgrade: the previous
-- release keeps running against this schema until every replica is replaced, so nothing it
-- writes or reads changes meaning.

-- 1. Contacts, companies and deals name their source by lead_sources id, '' for none. 0004 left
-- the column without a foreign key (it could run before 0003 made lead_sources), so an unknown id
-- could be stored and a source still used could be deleted.
--
-- The column keeps its values and its '' for none, which the previous release writes and reads;
-- a generated column holds the same id or NULL for none and carries the foreign key, so '' needs
-- no row in lead_sources and no writer has to change. Existing rows naming an id lead_sources
-- lacks are kept, never silently dropped: a well-formed id becomes a custom source (named by its
-- id; an admin may rename it), any other value is cleared with a FIELD_CHANGED entry in the
-- record's history holding the old value. The tables are locked for the migration so that no
-- such row appears between the clean-up and the constraint.
LOCK TABLE contacts, companies, deals IN ACCESS EXCLUSIVE MODE;

INSERT INTO lead_sources (id, name, sort, system)
SELECT id, id, (SELECT coalesce(max(sort), 0) FROM lead_sources) + 10 * row_number() OVER (ORDER BY id),
  false
FROM (SELECT source_id AS id FROM contacts UNION SELECT source_id FROM companies
      UNION SELECT source_id FROM deals) AS used
WHERE id ~ '^[A-Z][A-Z0-9_]{0,49}$' AND id NOT IN (SELECT id FROM lead_sources);

INSERT INTO history (entity_type, entity_id, kind, field, old_value, new_value)
SELECT 'CONTACT', id, 'FIELD_CHANGED', 'source_id', source_id, '' FROM contacts
WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources)
UNION ALL
SELECT 'COMPANY', id, 'FIELD_CHANGED', 'source_id', source_id, '' FROM companies
WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources)
UNION ALL
SELECT 'DEAL', id, 'FIELD_CHANGED', 'source_id', source_id, '' FROM deals
WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources);

UPDATE contacts SET source_id = '', version = version + 1, updated_at = now()
WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources);
UPDATE companies SET source_id = '', version = version + 1, updated_at = now()
WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources);
UPDATE deals SET source_id = '', version = version + 1, updated_at = now()
WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources);

ALTER TABLE contacts ADD COLUMN source_ref text
  GENERATED ALWAYS AS (NULLIF(source_id, '')) STORED
  CONSTRAINT contacts_source_fkey REFERENCES lead_sources (id);
ALTER TABLE companies ADD COLUMN source_ref text
  GENERATED ALWAYS AS (NULLIF(source_id, '')) STORED
  CONSTRAINT companies_source_fkey REFERENCES lead_sources (id);
ALTER TABLE deals ADD COLUMN source_ref text
  GENERATED ALWAYS AS (NULLIF(source_id, '')) STORED
  CONSTRAINT deals_source_fkey REFERENCES lead_sources (id);
-- Deleting a source looks its users up by these.
CREATE INDEX contacts_source_ref ON contacts (source_ref) WHERE source_ref IS NOT NULL;
CREATE INDEX companies_source_ref ON companies (source_ref) WHERE source_ref IS NOT NULL;
CREATE INDEX deals_source_ref ON deals (source_ref) WHERE source_ref IS NOT NULL;

-- 2. When two pipeline names, or two stage names of one pipeline, are the same name is decided by
-- one rule, the domain's NameKey (Unicode case folding, accents and compatibility forms unified,
-- every kind of whitespace collapsed). These indexes applied another rule, lower(btrim()), which
-- disagreed with it on hostile names both ways (it refused "ÉTAPE" beside "étape" with a
-- constraint error, and let "\tNew" beside "New" through). Uniqueness is now the domain's alone:
-- stage edits already hold their pipeline's row lock, and pipeline creations and renames take
-- the 'pipeline-names' advisory lock (store/sql/pipelines/lock_pipeline_names.sql). The previous
-- release keeps its own checks during a rolling upgrade.
DROP INDEX pipelines_name;
DROP INDEX pipeline_stages_name;
