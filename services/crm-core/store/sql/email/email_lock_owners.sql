-- The records replies are about to be filed under ($1 types, $2 ids), locked FOR KEY SHARE, each
-- table in id order. A merge, a conversion or a delete of one of them (all take the row FOR
-- UPDATE) waits for this batch to commit, and one that committed before is seen by the lookup the
-- batch makes after this lock. KEY SHARE rather than SHARE: the plain updates batches make to
-- these rows (a deal's last activity time, a lead's repeat count) do not conflict with it, so two
-- batches filing on one record do not deadlock on it.
WITH owners AS (
  SELECT t, o FROM unnest($1::text[], $2::bigint[]) AS x (t, o)
), l AS (
  SELECT id FROM leads WHERE id IN (SELECT o FROM owners WHERE t = 'LEAD')
  ORDER BY id FOR KEY SHARE
), c AS (
  SELECT id FROM contacts WHERE id IN (SELECT o FROM owners WHERE t = 'CONTACT')
  ORDER BY id FOR KEY SHARE
), k AS (
  SELECT id FROM companies WHERE id IN (SELECT o FROM owners WHERE t = 'COMPANY')
  ORDER BY id FOR KEY SHARE
), d AS (
  SELECT id FROM deals WHERE id IN (SELECT o FROM owners WHERE t = 'DEAL')
  ORDER BY id FOR KEY SHARE
)
SELECT (SELECT count(*) FROM l) + (SELECT count(*) FROM c) + (SELECT count(*) FROM k)
  + (SELECT count(*) FROM d)
