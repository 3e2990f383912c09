-- Deal $1 with its activities, as a contact's go with it: activities are owned by (type, id)
-- without a foreign key, and one left behind stayed open, and overdue, on a deal nobody can read.
WITH acts_gone AS (
  DELETE FROM activities WHERE owner_type = 'DEAL' AND owner_id = $1
)
DELETE FROM deals WHERE id = $1
