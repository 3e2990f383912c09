SELECT nextval('deals_id_seq') FROM generate_series(1, $1)
