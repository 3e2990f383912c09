-- $1 round-robin positions, one per record to assign; no row lock (see migration 0002).
SELECT nextval('assignment_position') FROM generate_series(1, $1)
