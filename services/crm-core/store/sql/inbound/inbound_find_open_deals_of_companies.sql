-- Open deals of these companies: (company, deal, deal's responsible).
SELECT d.company_id, d.id, coalesce(d.responsible_user_id, 0)
FROM deals AS d WHERE d.company_id = ANY ($1::bigint[]) AND NOT d.closed
