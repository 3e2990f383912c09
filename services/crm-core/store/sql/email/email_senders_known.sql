-- Which of the rows (thread $1, owner type $2 and id $3, sender address $4, lower case) may file
-- the sender's message in that thread, by their ordinality: the sender took part in the thread
-- (the From, Reply-To, To or Cc of one of its first $5 kept messages) or is an EMAIL identity of
-- the owner (of a deal: of its contacts or its company). Bounded: at most $5 messages a thread.
SELECT x.n FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
  WITH ORDINALITY AS x (t, ot, o, s, n)
WHERE EXISTS (
    SELECT 1 FROM (SELECT m.from_address, m.reply_to_address, m.to_addresses, m.cc_addresses
                   FROM email_messages AS m WHERE m.thread_key = x.t ORDER BY m.id LIMIT $5)
      AS m
    WHERE lower(m.from_address) = x.s OR lower(m.reply_to_address) = x.s
      OR EXISTS (SELECT 1 FROM unnest(m.to_addresses || m.cc_addresses) AS a (address)
                 WHERE lower(a.address) = x.s))
  OR (x.ot = 'LEAD' AND EXISTS (SELECT 1 FROM lead_identities AS i
                                WHERE i.kind = 'EMAIL' AND i.value = x.s AND i.lead_id = x.o))
  OR (x.ot = 'CONTACT' AND EXISTS (SELECT 1 FROM contact_identities AS i
                                   WHERE i.kind = 'EMAIL' AND i.value = x.s
                                     AND i.contact_id = x.o))
  OR (x.ot = 'COMPANY' AND EXISTS (SELECT 1 FROM company_identities AS i
                                   WHERE i.kind = 'EMAIL' AND i.value = x.s
                                     AND i.company_id = x.o))
  OR (x.ot = 'DEAL' AND (EXISTS (SELECT 1 FROM deal_contacts AS dc
                                 JOIN contact_identities AS i ON i.contact_id = dc.contact_id
                                 WHERE dc.deal_id = x.o AND i.kind = 'EMAIL' AND i.value = x.s)
                         OR EXISTS (SELECT 1 FROM deals AS d
                                    JOIN company_identities AS i ON i.company_id = d.company_id
                                    WHERE d.id = x.o AND i.kind = 'EMAIL' AND i.value = x.s)))
