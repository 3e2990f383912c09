-- For each of leads $1, the oldest live contact and the oldest live company holding one of its
-- identities (0: none): the switch converts a lead into the contact its person is already, as
-- inbound traffic in simple mode finds them, instead of a second contact.
SELECT l.id,
  coalesce((SELECT min(c.id) FROM lead_identities AS li
    JOIN contact_identities AS ci USING (kind, value)
    JOIN contacts AS c ON c.id = ci.contact_id AND c.merged_into IS NULL
    WHERE li.lead_id = l.id), 0),
  coalesce((SELECT min(co.id) FROM lead_identities AS li
    JOIN company_identities AS coi USING (kind, value)
    JOIN companies AS co ON co.id = coi.company_id AND co.merged_into IS NULL
    WHERE li.lead_id = l.id), 0)
FROM unnest($1::bigint[]) AS l (id)
