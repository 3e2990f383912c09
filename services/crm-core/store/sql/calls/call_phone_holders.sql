-- The records an answered outbound call reaches through the phone identity it dialled ($1 E.164
-- identities as the records hold them): a lead, contact or company holding it, and the deals of
-- such a contact or company, with the identity each holds. Read after the batch's records and
-- identities are written, so that a record the batch made is found; the writer then completes
-- their call-backs at the call's place in the batch, like those of the records it matched. Never
-- by the number as the provider spelled it ("0612345678" is "+33612345678"; a record that no
-- longer holds a number is not the person called).
WITH phones AS (SELECT DISTINCT phone FROM unnest($1::text[]) AS p (phone))
SELECT 'LEAD', i.lead_id, p.phone FROM phones AS p
JOIN lead_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
UNION
SELECT 'CONTACT', i.contact_id, p.phone FROM phones AS p
JOIN contact_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
UNION
SELECT 'COMPANY', i.company_id, p.phone FROM phones AS p
JOIN company_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
UNION
SELECT 'DEAL', d.deal_id, p.phone FROM phones AS p
JOIN contact_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
JOIN deal_contacts AS d ON d.contact_id = i.contact_id
UNION
SELECT 'DEAL', d.id, p.phone FROM phones AS p
JOIN company_identities AS i ON i.kind = 'PHONE' AND i.value = p.phone
JOIN deals AS d ON d.company_id = i.company_id
