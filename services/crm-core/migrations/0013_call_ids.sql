-- Every call folded into a CALL activity, not only its latest (0006 kept one call id per
-- activity: a call-back's call_id is its latest missed call's, so a recording arriving late for an
-- earlier missed call found nothing and was lost).
--
-- Written for a rolling upgrade: the previous release keeps writing activities.call_id and
-- nothing here; the recordings statement of this release looks at both, so a call written by
-- either release is found. Only a new table and a replaced trigger function: no lock is held on
-- the existing tables beyond the backfill's read. The foreign key to activities is added last and NOT
-- VALID, so that its SHARE ROW EXCLUSIVE lock on activities (which stops writers) is held only
-- for the commit, not through the backfill; 0014 validates it.

-- One row per call id: the activity that holds it (a call-back holds every missed call folded
-- into it), and the recording that arrived for that very call, if any.
CREATE TABLE activity_calls (
  call_id        text PRIMARY KEY,  -- "<provider>:<provider call id>"
  activity_id    bigint NOT NULL,  -- references activities (id): the key is added last, below
  recording_url  text
);
CREATE INDEX activity_calls_activity ON activity_calls (activity_id);

-- The calls written before this release: each activity's latest call (the earlier calls folded
-- into a call-back were not kept anywhere).
INSERT INTO activity_calls (call_id, activity_id, recording_url)
SELECT DISTINCT ON (call_id) call_id, id, call_recording_url
FROM activities WHERE call_id IS NOT NULL
ORDER BY call_id, id DESC;

-- A call-back folded into another when records merge or convert (0006's trigger) hands its
-- calls over with its missed calls, so that a late recording of one of them finds the open
-- call-back, not the closed one.
CREATE OR REPLACE FUNCTION fold_moved_call_back() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kept bigint;
BEGIN
  UPDATE activities
  SET missed_calls = missed_calls + NEW.missed_calls,
      last_attempt_at = greatest(last_attempt_at, NEW.last_attempt_at),
      deadline = least(deadline, NEW.deadline)
  WHERE owner_type = NEW.owner_type AND owner_id = NEW.owner_id AND call_back AND NOT completed
    AND id <> NEW.id
  RETURNING id INTO kept;
  IF kept IS NOT NULL THEN
    NEW.completed := true;
    NEW.completed_at := now();
    NEW.description := NEW.description || ' (folded into call-back ' || kept || ')';
    UPDATE activity_calls SET activity_id = kept WHERE activity_id = NEW.id;
  END IF;
  RETURN NEW;
END
$$;

-- Last, so that writers of activities wait only for the commit. NOT VALID: the backfilled rows are
-- checked by 0014 (an activity deleted by the previous release during the backfill left a row
-- that 0014 removes first); rows written from now on are checked, and cascade, at once.
ALTER TABLE activity_calls ADD CONSTRAINT activity_calls_activity_fk
  FOREIGN KEY (activity_id) REFERENCES activities (id) ON DELETE CASCADE NOT VALID;
