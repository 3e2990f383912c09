-- leadflow:no-transaction
-- Built without blocking writers, as 0009 (each IF NOT EXISTS; an INVALID one left by a failed
-- build is dropped and built again by the migration runner).

-- FindByName (store/sql/search/): trigram indexes serve a word prefix anywhere in the folded
-- name (LIKE '% beeth%') as well as at its start (LIKE 'beeth%', which the previous release
-- asks). They replace 0004's text_pattern_ops btrees, which 0017 drops once these exist, so that
-- an insert maintains no more search indexes than before (docs/performance.md).
CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_search_name_trgm
  ON leads USING gin (search_name gin_trgm_ops, search_company gin_trgm_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS contacts_search_trgm
  ON contacts USING gin (search_first_last gin_trgm_ops, search_last_first gin_trgm_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS companies_search_name_trgm
  ON companies USING gin (search_name gin_trgm_ops);

