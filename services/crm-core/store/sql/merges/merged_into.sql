-- $1: LEAD, CONTACT, COMPANY or DEAL. No row: the record does not exist; else where it was
-- merged into (0: not merged away; deals never are) and its responsible user (0: none).
SELECT coalesce(merged_into, 0), coalesce(responsible_user_id, 0) FROM leads
  WHERE $1 = 'LEAD' AND id = $2
UNION ALL SELECT coalesce(merged_into, 0), coalesce(responsible_user_id, 0) FROM contacts
  WHERE $1 = 'CONTACT' AND id = $2
UNION ALL SELECT coalesce(merged_into, 0), coalesce(responsible_user_id, 0) FROM companies
  WHERE $1 = 'COMPANY' AND id = $2
UNION ALL SELECT 0, coalesce(responsible_user_id, 0) FROM deals WHERE $1 = 'DEAL' AND id = $2
