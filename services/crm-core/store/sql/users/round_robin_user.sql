WITH active AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n,
  count(*) OVER () AS total FROM users WHERE active)
SELECT active.id FROM active
WHERE active.n = (SELECT nextval('assignment_position')) % active.total
