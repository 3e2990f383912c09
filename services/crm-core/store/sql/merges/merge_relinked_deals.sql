-- The deals a merge of $1 (CONTACT or COMPANY) relinks from the folded records $2 to the kept
-- record $3, read before the fold: deal, folded record, whether the kept one is on it already.
SELECT dc.deal_id, dc.contact_id,
  EXISTS (SELECT 1 FROM deal_contacts AS k WHERE k.deal_id = dc.deal_id AND k.contact_id = $3)
FROM deal_contacts AS dc WHERE $1 = 'CONTACT' AND dc.contact_id = ANY ($2::bigint[])
UNION ALL
SELECT d.id, d.company_id, false
FROM deals AS d WHERE $1 = 'COMPANY' AND d.company_id = ANY ($2::bigint[])
ORDER BY 1, 2
