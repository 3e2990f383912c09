-- Every record holding one identity: leads, then contacts, then companies, each by id; merged
-- away records excluded. Columns: type, id, display name, company name, responsible, closed, rank,
-- then a contact's own: first name, last name, whether that is crm_settings' placeholder, and the
-- identity it is shown by when it has no name (naming's ContactDisplayName; empty for others).
(SELECT 'LEAD', l.id, l.title, l.company_name, coalesce(l.responsible_user_id, 0),
   s.semantics <> 'PROCESS', 1 AS rank, '', '', false, ''
 FROM lead_identities AS i JOIN leads AS l ON l.id = i.lead_id
 JOIN lead_statuses AS s ON s.id = l.status
 WHERE i.kind = $1 AND i.value = $2 AND l.merged_into IS NULL)
UNION ALL
(SELECT 'CONTACT', c.id, btrim(c.first_name || ' ' || c.last_name),
   coalesce((SELECT co.name FROM contact_companies AS cc JOIN companies AS co
             ON co.id = cc.company_id WHERE cc.contact_id = c.id ORDER BY cc.company_id LIMIT 1),
            ''),
   coalesce(c.responsible_user_id, 0), false, 2, c.first_name, c.last_name,
   c.last_name = (SELECT last_name_placeholder FROM crm_settings WHERE id = 1),
   coalesce((SELECT r.value FROM contact_identities AS r WHERE r.contact_id = c.id
               ORDER BY array_position(ARRAY['EMAIL', 'PHONE', 'MESSENGER'], r.kind), r.value
               LIMIT 1), '')
 FROM contact_identities AS i JOIN contacts AS c ON c.id = i.contact_id
 WHERE i.kind = $1 AND i.value = $2 AND c.merged_into IS NULL)
UNION ALL
(SELECT 'COMPANY', c.id, c.name, '', coalesce(c.responsible_user_id, 0), false, 3, '', '', false,
   ''
 FROM company_identities AS i JOIN companies AS c ON c.id = i.company_id
 WHERE i.kind = $1 AND i.value = $2 AND c.merged_into IS NULL)
ORDER BY rank, 2 LIMIT $3
