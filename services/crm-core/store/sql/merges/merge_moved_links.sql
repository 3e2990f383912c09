-- The links a merge of $1 moves from the folded records $2 to the kept record $3, read before the
-- fold: contact ↔ company links (CONTACT or COMPANY; the ones the kept record holds already left
-- out, the fold keeps its own), or the returning leads naming a folded lead as their previous one
-- (LEAD; fold_lead.sql relinks them; the kept and folded leads themselves left out): the other
-- side, the folded record, the role, and how many there are in all; the first $4 in order.
WITH moved AS (
  SELECT cc.company_id AS other_id, cc.contact_id AS folded_id, cc.role
  FROM contact_companies AS cc
  WHERE $1 = 'CONTACT' AND cc.contact_id = ANY ($2::bigint[])
    AND NOT EXISTS (SELECT 1 FROM contact_companies AS k
                    WHERE k.contact_id = $3 AND k.company_id = cc.company_id)
  UNION ALL
  SELECT cc.contact_id, cc.company_id, cc.role
  FROM contact_companies AS cc
  WHERE $1 = 'COMPANY' AND cc.company_id = ANY ($2::bigint[])
    AND NOT EXISTS (SELECT 1 FROM contact_companies AS k
                    WHERE k.company_id = $3 AND k.contact_id = cc.contact_id)
  UNION ALL
  SELECT l.id, l.previous_lead_id, ''
  FROM leads AS l
  WHERE $1 = 'LEAD' AND l.previous_lead_id = ANY ($2::bigint[]) AND l.id <> $3
    AND l.id <> ALL ($2::bigint[])
)
SELECT other_id, folded_id, role, count(*) OVER () FROM moved ORDER BY other_id, folded_id LIMIT $4
