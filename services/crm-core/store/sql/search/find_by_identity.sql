-- Every record holding one identity: leads, then contacts, then companies, each by id; merged
-- away records excluded. Columns: type, id, display name, company name, responsible, closed.
(SELECT 'LEAD', l.id, l.title, l.company_name, coalesce(l.responsible_user_id, 0),
   s.semantics <> 'PROCESS', 1 AS rank
 FROM lead_identities AS i JOIN leads AS l ON l.id = i.lead_id
 JOIN lead_statuses AS s ON s.id = l.status
 WHERE i.kind = $1 AND i.value = $2 AND l.merged_into IS NULL)
UNION ALL
(SELECT 'CONTACT', c.id, btrim(c.first_name || ' ' || c.last_name),
   coalesce((SELECT co.name FROM contact_companies AS cc JOIN companies AS co
             ON co.id = cc.company_id WHERE cc.contact_id = c.id ORDER BY cc.company_id LIMIT 1),
            ''),
   coalesce(c.responsible_user_id, 0), false, 2
 FROM contact_identities AS i JOIN contacts AS c ON c.id = i.contact_id
 WHERE i.kind = $1 AND i.value = $2 AND c.merged_into IS NULL)
UNION ALL
(SELECT 'COMPANY', c.id, c.name, '', coalesce(c.responsible_user_id, 0), false, 3
 FROM company_identities AS i JOIN companies AS c ON c.id = i.company_id
 WHERE i.kind = $1 AND i.value = $2 AND c.merged_into IS NULL)
ORDER BY rank, 2 LIMIT $3
