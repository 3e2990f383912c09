-- Folds contact $2 into contact $1: identities (deduplicated), activities, company links and
-- deals (the kept contact's own link wins), leads pointing at it; then marks it merged.
WITH ids AS (
  INSERT INTO contact_identities (kind, value, contact_id)
  SELECT kind, value, $1 FROM contact_identities WHERE contact_id = $2 ON CONFLICT DO NOTHING
), ids_gone AS (
  DELETE FROM contact_identities WHERE contact_id = $2
), acts AS (
  UPDATE activities SET owner_id = $1 WHERE owner_type = 'CONTACT' AND owner_id = $2
), links AS (
  INSERT INTO contact_companies (contact_id, company_id, role, created_at)
  SELECT $1, company_id, role, created_at FROM contact_companies WHERE contact_id = $2
  ON CONFLICT DO NOTHING
), links_gone AS (
  DELETE FROM contact_companies WHERE contact_id = $2
), deals AS (
  INSERT INTO deal_contacts (deal_id, contact_id, created_at)
  SELECT deal_id, $1, created_at FROM deal_contacts WHERE contact_id = $2 ON CONFLICT DO NOTHING
), deals_gone AS (
  DELETE FROM deal_contacts WHERE contact_id = $2
), leads_moved AS (
  -- One UPDATE for both columns: a converted lead names the record in both, and two UPDATEs of
  -- one row in one statement apply only one of them (it kept contact_id on the folded record).
  UPDATE leads SET
    contact_id = CASE WHEN contact_id = $2 THEN $1 ELSE contact_id END,
    converted_contact_id = CASE WHEN converted_contact_id = $2 THEN $1 ELSE converted_contact_id END
  WHERE contact_id = $2 OR converted_contact_id = $2
), conversions_moved AS (
  UPDATE conversions SET contact_id = $1 WHERE contact_id = $2
), mails AS (
  UPDATE email_messages SET owner_id = $1 WHERE owner_type = 'CONTACT' AND owner_id = $2
), kept AS (
  -- The kept record changed (it gained what the folded one held): a new etag, so that an update
  -- made with the etag read before the merge is refused instead of overwriting it.
  UPDATE contacts SET version = version + 1, updated_at = now() WHERE id = $1
), recorded AS (
  INSERT INTO merges (entity_type, folded_id, kept_id, user_id)
  VALUES ('CONTACT', $2, $1, NULLIF($3::bigint, 0))
)
UPDATE contacts SET merged_into = $1, version = version + 1, updated_at = now() WHERE id = $2
