-- The stored messages among $1 (Message-IDs), each with the record its thread goes to now: the
-- record it is attached to, followed to the end (a folded lead, contact or company to the one it
-- was merged into, again and again along a chain; a converted lead to the deal it became, else
-- its contact, else its company), at most 20 steps. With that record's responsible when active
-- (else 0), and the thread's newest open EMAIL activity on that record (0: none). A message whose
-- record no longer exists, or whose chain is longer than the bound, is not returned.
-- An id of $1 that no kept message has, but that the In-Reply-To or References of a kept message
-- name (the message arrived after a reply to it, or a sibling reply names the same missing
-- parent), is returned with the thread of the first kept message naming it.
WITH RECURSIVE found (message_id, thread_key, owner_type, owner_id) AS (
  SELECT m.message_id, m.thread_key, m.owner_type, m.owner_id
  FROM email_messages AS m WHERE m.message_id = ANY($1::text[])
  UNION ALL
  SELECT x.id, n.thread_key, n.owner_type, n.owner_id
  FROM unnest($1::text[]) AS x (id)
  CROSS JOIN LATERAL (
    SELECT m.thread_key, m.owner_type, m.owner_id FROM email_messages AS m
    WHERE (m.in_reply_to = x.id AND m.in_reply_to <> '') OR m.refs @> ARRAY[x.id]
    ORDER BY m.id LIMIT 1
  ) AS n
  WHERE NOT EXISTS (SELECT 1 FROM email_messages AS k WHERE k.message_id = x.id)
), walk (message_id, thread_key, owner_type, owner_id, depth) AS (
  SELECT f.message_id, f.thread_key, f.owner_type, f.owner_id, 0 FROM found AS f
  UNION ALL
  SELECT w.message_id, w.thread_key, n.owner_type, n.owner_id, w.depth + 1
  FROM walk AS w
  CROSS JOIN LATERAL (
    SELECT 'LEAD'::text AS owner_type, l.merged_into AS owner_id FROM leads AS l
    WHERE w.owner_type = 'LEAD' AND l.id = w.owner_id AND l.merged_into IS NOT NULL
    UNION ALL
    SELECT CASE WHEN l.converted_deal_id IS NOT NULL THEN 'DEAL'
                WHEN l.converted_contact_id IS NOT NULL THEN 'CONTACT'
                ELSE 'COMPANY' END,
      coalesce(l.converted_deal_id, l.converted_contact_id, l.converted_company_id)
    FROM leads AS l
    WHERE w.owner_type = 'LEAD' AND l.id = w.owner_id AND l.merged_into IS NULL
      AND coalesce(l.converted_deal_id, l.converted_contact_id, l.converted_company_id) IS NOT NULL
    UNION ALL
    SELECT 'CONTACT', k.merged_into FROM contacts AS k
    WHERE w.owner_type = 'CONTACT' AND k.id = w.owner_id AND k.merged_into IS NOT NULL
    UNION ALL
    SELECT 'COMPANY', k.merged_into FROM companies AS k
    WHERE w.owner_type = 'COMPANY' AND k.id = w.owner_id AND k.merged_into IS NOT NULL
  ) AS n
  WHERE w.depth < 20
), now_owner AS (
  SELECT DISTINCT ON (message_id) message_id, thread_key, owner_type, owner_id
  FROM walk ORDER BY message_id, depth DESC
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
  SELECT l.id, l.responsible_user_id FROM leads AS l
  WHERE c.owner_type = 'LEAD' AND l.id = c.owner_id AND l.merged_into IS NULL
    AND l.converted_deal_id IS NULL AND l.converted_contact_id IS NULL
    AND l.converted_company_id IS NULL
  UNION ALL
  SELECT k.id, k.responsible_user_id FROM contacts AS k
  WHERE c.owner_type = 'CONTACT' AND k.id = c.owner_id AND k.merged_into IS NULL
  UNION ALL
  SELECT k.id, k.responsible_user_id FROM companies AS k
  WHERE c.owner_type = 'COMPANY' AND k.id = c.owner_id AND k.merged_into IS NULL
  UNION ALL
  SELECT d.id, d.responsible_user_id FROM deals AS d WHERE c.owner_type = 'DEAL' AND d.id = c.owner_id
) AS o ON true
