-- Company $1 with the companies merged into it, at any depth (see delete_contact.sql); returns
-- the ids of the tombstones deleted.
WITH RECURSIVE folded AS (
  SELECT id FROM companies WHERE merged_into = $1
  UNION
  SELECT c.id FROM companies AS c JOIN folded AS f ON c.merged_into = f.id
), acts_gone AS (
  DELETE FROM activities WHERE owner_type = 'COMPANY'
    AND (owner_id = $1 OR owner_id IN (SELECT id FROM folded))
), gone AS (
  DELETE FROM companies WHERE id = $1 OR id IN (SELECT id FROM folded) RETURNING id
)
SELECT id FROM gone WHERE id <> $1 ORDER BY id
