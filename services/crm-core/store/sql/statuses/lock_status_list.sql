-- Status edits one at a time per list ($1: 'lead_statuses' or 'lead_sources'), so that the
-- invariants checked before a change (one SUCCESS status) still hold when it is written.
SELECT pg_advisory_xact_lock(hashtextextended('status-list:' || $1, 0))
