-- The stored messages among $1 (Message-IDs), each with the record its thread goes to now: the
-- record it is attached to, a folded lead, contact or company followed to the one it was merged
-- into, and a converted lead to the deal it became (else its contact, else its company). With
-- that record's responsible when active (else 0), and the thread's newest open EMAIL activity on
-- that record (0: none). A message whose record no longer exists is not returned.
WITH found AS (
  SELECT m.message_id, m.thread_key, m.owner_type,
    coalesce((SELECT g.kept_id FROM merges AS g
              WHERE g.entity_type = m.owner_type AND g.folded_id = m.owner_id),
             m.owner_id) AS owner_id
  FROM email_messages AS m WHERE m.message_id = ANY($1::text[])
), now_owner AS (
  SELECT f.message_id, f.thread_key,
    CASE WHEN l.converted_deal_id IS NOT NULL THEN 'DEAL'
         WHEN l.converted_contact_id IS NOT NULL THEN 'CONTACT'
         WHEN l.converted_company_id IS NOT NULL THEN 'COMPANY'
         ELSE f.owner_type END AS owner_type,
    coalesce(l.converted_deal_id, l.converted_contact_id, l.converted_company_id,
             f.owner_id) AS owner_id
  FROM found AS f LEFT JOIN leads AS l ON f.owner_type = 'LEAD' AND l.id = f.owner_id
)
SELECT c.message_id, c.thread_key, c.owner_type, o.id,
  coalesce((SELECT u.id FROM users AS u WHERE u.id = o.responsible_user_id AND u.active), 0),
  coalesce((SELECT t.activity_id FROM email_messages AS t
            JOIN activities AS a ON a.id = t.activity_id
            WHERE t.thread_key = c.thread_key AND a.type = 'EMAIL' AND NOT a.completed
              AND a.owner_type = c.owner_type AND a.owner_id = o.id
            ORDER BY t.id DESC LIMIT 1), 0)
FROM now_owner AS c
JOIN LATERAL (
  SELECT l.id, l.responsible_user_id FROM leads AS l WHERE c.owner_type = 'LEAD' AND l.id = c.owner_id
  UNION ALL
  SELECT k.id, k.responsible_user_id FROM contacts AS k
  WHERE c.owner_type = 'CONTACT' AND k.id = c.owner_id AND k.merged_into IS NULL
  UNION ALL
  SELECT k.id, k.responsible_user_id FROM companies AS k
  WHERE c.owner_type = 'COMPANY' AND k.id = c.owner_id AND k.merged_into IS NULL
  UNION ALL
  SELECT d.id, d.responsible_user_id FROM deals AS d WHERE c.owner_type = 'DEAL' AND d.id = c.owner_id
) AS o ON true
