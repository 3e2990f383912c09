-- Folds company $2 into company $1: identities (deduplicated), activities, contact links (the
-- kept company's role wins), deals, leads pointing at it; then marks it merged.
WITH ids AS (
  INSERT INTO company_identities (kind, value, company_id)
  SELECT kind, value, $1 FROM company_identities WHERE company_id = $2 ON CONFLICT DO NOTHING
), ids_gone AS (
  DELETE FROM company_identities WHERE company_id = $2
), acts AS (
  UPDATE activities SET owner_id = $1 WHERE owner_type = 'COMPANY' AND owner_id = $2
), links AS (
  INSERT INTO contact_companies (contact_id, company_id, role, created_at)
  SELECT contact_id, $1, role, created_at FROM contact_companies WHERE company_id = $2
  ON CONFLICT DO NOTHING
), links_gone AS (
  DELETE FROM contact_companies WHERE company_id = $2
), deals AS (
  UPDATE deals SET company_id = $1 WHERE company_id = $2
), leads_moved AS (
  -- One UPDATE for both columns: a converted lead names the record in both, and two UPDATEs of
  -- one row in one statement apply only one of them (it kept company_id on the folded record).
  UPDATE leads SET
    company_id = CASE WHEN company_id = $2 THEN $1 ELSE company_id END,
    converted_company_id = CASE WHEN converted_company_id = $2 THEN $1 ELSE converted_company_id END
  WHERE company_id = $2 OR converted_company_id = $2
), conversions_moved AS (
  UPDATE conversions SET company_id = $1 WHERE company_id = $2
), mails AS (
  UPDATE email_messages SET owner_id = $1 WHERE owner_type = 'COMPANY' AND owner_id = $2
), kept AS (
  -- The kept record changed (it gained what the folded one held): a new etag, so that an update
  -- made with the etag read before the merge is refused instead of overwriting it.
  UPDATE companies SET version = version + 1, updated_at = now() WHERE id = $1
), recorded AS (
  INSERT INTO merges (entity_type, folded_id, kept_id, user_id)
  VALUES ('COMPANY', $2, $1, NULLIF($3::bigint, 0))
)
UPDATE companies SET merged_into = $1, version = version + 1, updated_at = now() WHERE id = $2
