-- The pair's role, locked until the transaction ends; no row: not linked.
SELECT role FROM contact_companies WHERE contact_id = $1 AND company_id = $2 FOR UPDATE
