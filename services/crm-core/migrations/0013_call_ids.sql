-- Every call folded into a CALL activity, not only its latest (0006 kept one call id per
-- activity: a call-back's call_id is its latest missed call's, so a recording arriving late for an
-- earlier missed call found nothing and was lost).
--
-- Written for a rolling upgrade: the previous release keeps writing activities.call_id and
-- nothing here; the recordings statement of this release looks at both, so a call written by
-- either release is found. Only a new table and a replaced trigger function: no lock is held on
-- the existing tables beyond the backfill's read.

-- One row per call id: the activity that holds it (a call-back holds every missed call folded
-- into it), and the recording that arrived for that very call, if any.
CREATE TABLE activity_calls (
  call_id        text PRIMARY KEY,  -- "<provider>:<provider call id>"
  activity_id    bigint NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
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
