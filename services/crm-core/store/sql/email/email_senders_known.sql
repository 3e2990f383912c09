-- Which of the rows (thread $1, owner type $2 and id $3, sender address $4, lower case, and the
-- sender's domain $6, lower case, or '' when it says nothing: a public mail provider's or one of
-- ours configured) may file the sender's message in that thread, by their ordinality:
--  - the sender took part in the thread (the From, Reply-To, To or Cc of one of its first $5 kept
--    messages);
--  - or the owner knows the address: an EMAIL identity of the owner; of a company, also of its
--    contacts; of a deal, of its contacts, its company and its company's contacts;
--  - or the sender's domain is that of the From of one of the thread's first $5 kept messages or
--    of an EMAIL identity of the owner (of a deal: of its contacts and its company), and is not
--    ours: the domain of no address a thread's message came in through (mailbox), nor of an email
--    route.
-- Bounded: at most $5 messages a thread; an owner's identities are read through their owner's
-- index.
SELECT x.n FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $6::text[])
  WITH ORDINALITY AS x (t, ot, o, s, d, n)
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
  OR (x.ot = 'COMPANY' AND (EXISTS (SELECT 1 FROM company_identities AS i
                                    WHERE i.kind = 'EMAIL' AND i.value = x.s
                                      AND i.company_id = x.o)
                            OR EXISTS (SELECT 1 FROM contact_identities AS i
                                       JOIN contact_companies AS cc ON cc.contact_id = i.contact_id
                                       WHERE i.kind = 'EMAIL' AND i.value = x.s
                                         AND cc.company_id = x.o)))
  OR (x.ot = 'DEAL' AND (EXISTS (SELECT 1 FROM deal_contacts AS dc
                                 JOIN contact_identities AS i ON i.contact_id = dc.contact_id
                                 WHERE dc.deal_id = x.o AND i.kind = 'EMAIL' AND i.value = x.s)
                         OR EXISTS (SELECT 1 FROM deals AS d
                                    JOIN company_identities AS i ON i.company_id = d.company_id
                                    WHERE d.id = x.o AND i.kind = 'EMAIL' AND i.value = x.s)
                         OR EXISTS (SELECT 1 FROM deals AS d
                                    JOIN contact_companies AS cc ON cc.company_id = d.company_id
                                    JOIN contact_identities AS i ON i.contact_id = cc.contact_id
                                    WHERE d.id = x.o AND i.kind = 'EMAIL' AND i.value = x.s)))
  OR (x.d <> ''
      AND NOT EXISTS (SELECT 1 FROM (SELECT m.mailbox FROM email_messages AS m
                                     WHERE m.thread_key = x.t ORDER BY m.id LIMIT $5) AS m
                      WHERE lower(split_part(m.mailbox, '@', 2)) = x.d)
      AND NOT EXISTS (SELECT 1 FROM email_routes AS r WHERE split_part(r.address, '@', 2) = x.d)
      AND (EXISTS (SELECT 1 FROM (SELECT m.from_address FROM email_messages AS m
                                  WHERE m.thread_key = x.t ORDER BY m.id LIMIT $5) AS m
                   WHERE lower(split_part(m.from_address, '@', 2)) = x.d)
           OR (x.ot = 'LEAD' AND EXISTS (SELECT 1 FROM lead_identities AS i
                                         WHERE i.lead_id = x.o AND i.kind = 'EMAIL'
                                           AND split_part(i.value, '@', 2) = x.d))
           OR (x.ot = 'CONTACT' AND EXISTS (SELECT 1 FROM contact_identities AS i
                                            WHERE i.contact_id = x.o AND i.kind = 'EMAIL'
                                              AND split_part(i.value, '@', 2) = x.d))
           OR (x.ot = 'COMPANY' AND EXISTS (SELECT 1 FROM company_identities AS i
                                            WHERE i.company_id = x.o AND i.kind = 'EMAIL'
                                              AND split_part(i.value, '@', 2) = x.d))
           OR (x.ot = 'DEAL' AND (EXISTS (SELECT 1 FROM deal_contacts AS dc
                                          JOIN contact_identities AS i
                                            ON i.contact_id = dc.contact_id
                                          WHERE dc.deal_id = x.o AND i.kind = 'EMAIL'
                                            AND split_part(i.value, '@', 2) = x.d)
                                  OR EXISTS (SELECT 1 FROM deals AS d
                                             JOIN company_identities AS i
                                               ON i.company_id = d.company_id
                                             WHERE d.id = x.o AND i.kind = 'EMAIL'
                                               AND split_part(i.value, '@', 2) = x.d)))))
