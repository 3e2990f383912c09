-- leadflow:no-transaction
-- The indexes of 0005 and 0006 on tables that already hold data (activities may be large), built
-- without blocking their writers (docs/operations.md, "Migrations and rolling upgrades"). Each
-- is IF NOT EXISTS, so a rerun after an interruption skips what is built; an INVALID one left by
-- a failed build is dropped and built again by the migration runner.

-- 0005: the consumer finds the activity an event made by its origin.
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_origin_event ON activities (origin_event_id)
  WHERE origin_event_id IS NOT NULL;

-- 0006: one open call-back per record, whatever the application does; the consumer's upserts
-- (ON CONFLICT … DO UPDATE) name it.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS activities_one_open_call_back
  ON activities (owner_type, owner_id) WHERE call_back AND NOT completed;

-- 0006: a recording that arrives after its call finds the call's activity.
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_call_id ON activities (call_id)
  WHERE call_id IS NOT NULL;

-- 0006: an answered outbound call completes the open call-backs of the number it dialled.
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_open_call_back_number
  ON activities (call_number) WHERE call_back AND NOT completed;

-- 0006: one user per phone extension.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_extension ON users (extension)
  WHERE extension IS NOT NULL;
