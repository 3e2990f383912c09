-- leadflow:no-transaction
-- 0007's source_ref columns: deleting a source (the foreign keys' check) and StatusService's
-- count of a source's records look its users up by these. Built without blocking writers; see
-- 0009.
CREATE INDEX CONCURRENTLY IF NOT EXISTS contacts_source_ref ON contacts (source_ref)
  WHERE source_ref IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS companies_source_ref ON companies (source_ref)
  WHERE source_ref IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS deals_source_ref ON deals (source_ref)
  WHERE source_ref IS NOT NULL;
