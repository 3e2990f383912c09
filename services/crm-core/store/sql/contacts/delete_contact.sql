-- Activities are owned by (type, id) without a foreign key: they go with their owner.
WITH gone AS (DELETE FROM activities WHERE owner_type = 'CONTACT' AND owner_id = $1)
DELETE FROM contacts WHERE id = $1
