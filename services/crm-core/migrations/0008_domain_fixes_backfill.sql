-- The rows written before 0006 and 0007 are brought under their constraints, without a lock that
-- readers or writers wait for: the updates take row locks only (docs/operations.md, "Migrations
-- and rolling upgrades"). The validation is 0012, a transaction of its own, so that these row
-- locks are released before its table scans instead of being held through them. Writers
-- meanwhile are held to the constraints already (NOT VALID constraints and the source_ref trigger
-- are enforced on every write since 0006 and 0007), so no unchecked row can appear between the
-- clean-up and the validation.

-- 1. Sources of contacts, companies and deals (0007). Rows naming an id lead_sources lacks are
-- kept, never silently dropped: a well-formed id becomes a custom source (named by its id; an
-- admin may rename it), any other value is cleared with a FIELD_CHANGED entry in the record's
-- history holding the old value (read under the row lock of the update that clears it).
INSERT INTO lead_sources (id, name, sort, system)
SELECT id, id, (SELECT coalesce(max(sort), 0) FROM lead_sources) + 10 * row_number() OVER (ORDER BY id),
  false
FROM (SELECT source_id AS id FROM contacts UNION SELECT source_id FROM companies
      UNION SELECT source_id FROM deals) AS used
WHERE id ~ '^[A-Z][A-Z0-9_]{0,49}$' AND id NOT IN (SELECT id FROM lead_sources)
ON CONFLICT (id) DO NOTHING;

WITH cleared AS (
  UPDATE contacts c SET source_id = '', version = c.version + 1, updated_at = now()
  FROM (SELECT id, source_id FROM contacts
        WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources)
        FOR UPDATE) AS old
  WHERE c.id = old.id
  RETURNING c.id, old.source_id)
INSERT INTO history (entity_type, entity_id, kind, field, old_value, new_value)
SELECT 'CONTACT', id, 'FIELD_CHANGED', 'source_id', source_id, '' FROM cleared;

WITH cleared AS (
  UPDATE companies c SET source_id = '', version = c.version + 1, updated_at = now()
  FROM (SELECT id, source_id FROM companies
        WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources)
        FOR UPDATE) AS old
  WHERE c.id = old.id
  RETURNING c.id, old.source_id)
INSERT INTO history (entity_type, entity_id, kind, field, old_value, new_value)
SELECT 'COMPANY', id, 'FIELD_CHANGED', 'source_id', source_id, '' FROM cleared;

WITH cleared AS (
  UPDATE deals d SET source_id = '', version = d.version + 1, updated_at = now()
  FROM (SELECT id, source_id FROM deals
        WHERE source_id <> '' AND source_id NOT IN (SELECT id FROM lead_sources)
        FOR UPDATE) AS old
  WHERE d.id = old.id
  RETURNING d.id, old.source_id)
INSERT INTO history (entity_type, entity_id, kind, field, old_value, new_value)
SELECT 'DEAL', id, 'FIELD_CHANGED', 'source_id', source_id, '' FROM cleared;

-- Rows from before 0007 get their source_ref (the trigger sets it from source_id). The etag
-- (version) does not move: nothing a client reads has changed.
UPDATE contacts SET source_ref = source_id WHERE source_id <> '' AND source_ref IS NULL;
UPDATE companies SET source_ref = source_id WHERE source_id <> '' AND source_ref IS NULL;
UPDATE deals SET source_ref = source_id WHERE source_id <> '' AND source_ref IS NULL;
