-- One lead source, locked against leads taking it until the commit (their foreign key check).
SELECT id FROM lead_sources WHERE id = $1 FOR UPDATE
