-- 0004's text_pattern_ops btrees, replaced by 0016's trigram indexes (which also serve the
-- previous release's prefix LIKE). A plain DROP INDEX scans nothing, but takes ACCESS EXCLUSIVE on
-- its table for the instant of the drop: the runner's lock_timeout bounds the wait behind a long
-- transaction, and the migration is retried (docs/operations.md).
DROP INDEX IF EXISTS leads_search_name, leads_search_company, contacts_search_first_last,
  contacts_search_last_first, companies_search_name;
