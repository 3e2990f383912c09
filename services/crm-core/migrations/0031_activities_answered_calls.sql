-- leadflow:no-transaction
-- A record's answered calls, in the order they were answered: the writer's look-up of the
-- answered call that makes a late missed call's call-back moot (store/sql/calls/
-- reached_call_backs.sql) reads the first entry after the missed call's time. Through
-- activities_owner it read every activity of the record, on each missed call; a busy record
-- holds thousands. Partial: only answered calls that can decide (not call-backs, with an event
-- to complete by), the look-up's predicate word for word, so that the planner can use it.
-- Built without blocking the writers of activities (docs/operations.md, "Writing a migration").
CREATE INDEX CONCURRENTLY IF NOT EXISTS activities_answered_calls
  ON activities (owner_type, owner_id,
    (coalesce(call_answered_at, call_started_at, call_ended_at)), id)
  WHERE type = 'CALL' AND NOT call_back AND call_outcome = 'ANSWERED'
    AND origin_event_id IS NOT NULL;
