-- $1: LEAD, CONTACT, COMPANY or DEAL. No row: the record does not exist; else where its chain of
-- merges ends (0: not merged away; deals never are) and its responsible user (0: none). A record
-- folded into one folded in turn names the record still standing at the end (5 into 6, then 6
-- into 7: 7), at most 20 merges along, as the email thread lookup follows them.
WITH RECURSIVE record (merged_into, responsible_user_id) AS (
  SELECT coalesce(merged_into, 0), coalesce(responsible_user_id, 0) FROM leads
    WHERE $1 = 'LEAD' AND id = $2
  UNION ALL SELECT coalesce(merged_into, 0), coalesce(responsible_user_id, 0) FROM contacts
    WHERE $1 = 'CONTACT' AND id = $2
  UNION ALL SELECT coalesce(merged_into, 0), coalesce(responsible_user_id, 0) FROM companies
    WHERE $1 = 'COMPANY' AND id = $2
  UNION ALL SELECT 0, coalesce(responsible_user_id, 0) FROM deals WHERE $1 = 'DEAL' AND id = $2
), chain (id, depth) AS (
  SELECT merged_into, 1 FROM record WHERE merged_into <> 0
  UNION ALL
  SELECT m.kept_id, c.depth + 1 FROM chain AS c
  JOIN merges AS m ON m.entity_type = $1 AND m.folded_id = c.id
  WHERE c.depth < 20
)
SELECT coalesce((SELECT id FROM chain ORDER BY depth DESC LIMIT 1), 0), responsible_user_id
FROM record
