-- For each sender address of $1 (lower case): the Message-ID of the newest message kept from that
-- address whose EMAIL activity is still open — the reply task already open for that
-- correspondent. Only each sender's newest 50 kept messages are looked at (bounded; an open one
-- is among the newest). No row: none open.
SELECT s.sender, o.message_id
FROM unnest($1::text[]) AS s (sender)
CROSS JOIN LATERAL (
  SELECT m.message_id
  FROM (SELECT k.message_id, k.activity_id, k.id FROM email_messages AS k
        WHERE lower(k.from_address) = s.sender ORDER BY k.id DESC LIMIT 50) AS m
  JOIN activities AS a ON a.id = m.activity_id
  WHERE m.message_id IS NOT NULL AND a.type = 'EMAIL' AND NOT a.completed
  ORDER BY m.id DESC LIMIT 1
) AS o
