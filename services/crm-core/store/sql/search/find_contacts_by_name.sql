-- $1 as in find_leads_by_name.sql: a word of the name ("first last") starts with it, or the
-- name written last name first does ("curie ma" finds Marie Curie). 0016's trigram index.
-- The columns of find_by_identity.sql's contacts, without its rank.
SELECT 'CONTACT', c.id, btrim(c.first_name || ' ' || c.last_name),
  coalesce((SELECT co.name FROM contact_companies AS cc JOIN companies AS co
            ON co.id = cc.company_id WHERE cc.contact_id = c.id ORDER BY cc.company_id LIMIT 1),
           ''),
  coalesce(c.responsible_user_id, 0), false, c.first_name, c.last_name,
  c.last_name = (SELECT last_name_placeholder FROM crm_settings WHERE id = 1),
  coalesce((SELECT r.value FROM contact_identities AS r WHERE r.contact_id = c.id
              ORDER BY array_position(ARRAY['EMAIL', 'PHONE', 'MESSENGER'], r.kind), r.value
              LIMIT 1), '')
FROM contacts AS c
WHERE c.merged_into IS NULL AND c.id > $2
  AND (c.search_first_last LIKE $1 OR c.search_first_last LIKE '% ' || $1
    OR c.search_first_last LIKE '%-' || $1 OR c.search_last_first LIKE $1)
ORDER BY c.id LIMIT $3
