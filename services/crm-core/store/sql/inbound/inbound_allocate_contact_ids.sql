SELECT nextval('contacts_id_seq') FROM generate_series(1, $1)
