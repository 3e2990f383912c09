-- $1 as in find_leads_by_name.sql: a word of the name ("first last") starts with a form of the
-- prefix; $4: a reading of the name written last name first starts with one ("curie ma" finds
-- Marie Curie): patterns at the key's start and after the readings' separator. 0016's trigram
-- index.
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
  AND (c.search_first_last LIKE ANY ($1::text[]) OR c.search_last_first LIKE ANY ($4::text[]))
ORDER BY c.id LIMIT $3
