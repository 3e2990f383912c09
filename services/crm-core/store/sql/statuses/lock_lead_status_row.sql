-- One lead status, locked against leads taking it until the commit (their foreign key check).
SELECT id FROM lead_statuses WHERE id = $1 FOR UPDATE
