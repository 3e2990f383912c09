-- Contact $1 with the contacts merged into it, at any depth (their tombstones: nothing points at
-- them any more, the fold moved it all to $1), so that deleting a kept contact is not refused by
-- the merged_into foreign key. Activities are owned by (type, id) without a foreign key: they go
-- with their owner. Returns the ids of the tombstones deleted.
WITH RECURSIVE folded AS (
  SELECT id FROM contacts WHERE merged_into = $1
  UNION
  SELECT c.id FROM contacts AS c JOIN folded AS f ON c.merged_into = f.id
), acts_gone AS (
  DELETE FROM activities WHERE owner_type = 'CONTACT'
    AND (owner_id = $1 OR owner_id IN (SELECT id FROM folded))
), gone AS (
  DELETE FROM contacts WHERE id = $1 OR id IN (SELECT id FROM folded) RETURNING id
)
SELECT id FROM gone WHERE id <> $1 ORDER BY id
