-- Folds lead $2 into lead $1: identities (deduplicated), activities, its repeat count, leads
-- naming it as their previous lead; then marks it merged.
WITH ids AS (
  INSERT INTO lead_identities (kind, value, lead_id)
  SELECT kind, value, $1 FROM lead_identities WHERE lead_id = $2 ON CONFLICT DO NOTHING
), ids_gone AS (
  DELETE FROM lead_identities WHERE lead_id = $2
), acts AS (
  UPDATE activities SET owner_id = $1 WHERE owner_type = 'LEAD' AND owner_id = $2
), previous AS (
  UPDATE leads SET previous_lead_id = $1 WHERE previous_lead_id = $2 AND id <> $1
), mails AS (
  UPDATE email_messages SET owner_id = $1 WHERE owner_type = 'LEAD' AND owner_id = $2
), kept AS (
  -- The kept record changed (it gained what the folded one held): a new etag, so that an update
  -- made with the etag read before the merge is refused instead of overwriting it.
  UPDATE leads SET version = version + 1, updated_at = now() WHERE id = $1
), recorded AS (
  INSERT INTO merges (entity_type, folded_id, kept_id, user_id)
  VALUES ('LEAD', $2, $1, NULLIF($3::bigint, 0))
)
UPDATE leads SET merged_into = $1, version = version + 1, updated_at = now() WHERE id = $2
