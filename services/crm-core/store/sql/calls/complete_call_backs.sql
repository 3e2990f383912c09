-- An answered outbound call reached the person: the open call-backs are done of the records it
-- matched ($1 owner types, $2 owner ids, $3 the call's event id), and of every record holding
-- the phone identity it dialled ($4 E.164 identities as the records hold them, $5 event ids): a
-- lead, contact or company holding it, and the deals of such a contact or company. Never by the
-- number as the provider spelled it ("0612345678" is "+33612345678"; a record that no longer
-- holds a number is not the person called). Returns the deals touched.
WITH owners AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]) AS o (t, id, e)),
  phones AS (SELECT * FROM unnest($4::text[], $5::text[]) AS p (phone, e)),
  holders AS (
    SELECT t, id, e FROM owners
    UNION ALL
    SELECT 'LEAD', i.lead_id, p.e FROM phones AS p
    JOIN lead_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
    UNION ALL
    SELECT 'CONTACT', i.contact_id, p.e FROM phones AS p
    JOIN contact_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
    UNION ALL
    SELECT 'COMPANY', i.company_id, p.e FROM phones AS p
    JOIN company_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
    UNION ALL
    SELECT 'DEAL', d.deal_id, p.e FROM phones AS p
    JOIN contact_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
    JOIN deal_contacts AS d ON d.contact_id = i.contact_id
    UNION ALL
    SELECT 'DEAL', d.id, p.e FROM phones AS p
    JOIN company_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
    JOIN deals AS d ON d.company_id = i.company_id)
UPDATE activities AS a SET completed = true, completed_at = now(),
  completed_by_event_id =
    (SELECT e FROM holders AS h WHERE h.t = a.owner_type AND h.id = a.owner_id LIMIT 1)
WHERE a.call_back AND NOT a.completed
  AND (a.owner_type, a.owner_id) IN (SELECT t, id FROM holders)
RETURNING a.owner_type, a.owner_id
