-- Overdue ($7): open, the deadline passed, and the record still open — a deal not in a SUCCESS
-- or FAILURE stage, a lead not merged away, not converted and in a PROCESS status, a contact or
-- company not merged away. An activity of a closed record is dead work, not late work.
{{activity_columns}}
WHERE ($1 = '' OR (owner_type = $1 AND owner_id = $2::bigint))
  AND ($3::bigint = 0 OR responsible_user_id = $3::bigint)
  AND ($4 = 0 OR ($4 = 1 AND NOT completed) OR ($4 = 2 AND completed))
  AND ($5::bigint = 0 OR id < $5::bigint)
  AND (NOT $7::boolean OR (NOT completed AND deadline < now() AND CASE activities.owner_type
    WHEN 'DEAL' THEN EXISTS (
      SELECT 1 FROM deals AS d WHERE d.id = activities.owner_id AND NOT d.closed)
    WHEN 'LEAD' THEN EXISTS (
      SELECT 1 FROM leads AS l JOIN lead_statuses AS s ON s.id = l.status
      WHERE l.id = activities.owner_id AND s.semantics = 'PROCESS' AND l.merged_into IS NULL
        AND l.converted_deal_id IS NULL AND l.converted_contact_id IS NULL
        AND l.converted_company_id IS NULL)
    WHEN 'CONTACT' THEN EXISTS (
      SELECT 1 FROM contacts AS c WHERE c.id = activities.owner_id AND c.merged_into IS NULL)
    WHEN 'COMPANY' THEN EXISTS (
      SELECT 1 FROM companies AS c WHERE c.id = activities.owner_id AND c.merged_into IS NULL)
    ELSE false END))
ORDER BY id DESC LIMIT $6
