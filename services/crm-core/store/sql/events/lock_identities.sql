-- Transaction-scoped locks on every identity of the batch, in one global order (the hash), so
-- two consumers with overlapping identities serialise and never deadlock.
SELECT count(pg_advisory_xact_lock(h)) FROM (
  SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h
) AS ordered
