-- The contact ↔ company links a merge of $1 (CONTACT or COMPANY) moves from the folded records $2
-- to the kept record $3, read before the fold, the ones the kept record holds already left out
-- (the fold keeps its own): the other side, the folded record, the role, and how many there are
-- in all; the first $4 in order.
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
)
SELECT other_id, folded_id, role, count(*) OVER () FROM moved ORDER BY other_id, folded_id LIMIT $4
