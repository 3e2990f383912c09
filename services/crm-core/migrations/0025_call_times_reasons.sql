-- When each call happened, why an unidentified call is unidentified, and merges that fold the
-- recordings of call-backs too (docs/architecture.md, "Calls").
--
-- Rolling upgrade (docs/operations.md): nullable columns with no default (no rewrite, and a
-- binary that does not know them leaves them NULL: the call's times unknown, the reason read
-- from the row as below), and a replaced trigger function. Nothing to backfill.

-- The call's own times as the provider gave them (a call-back: its latest missed call's);
-- created_at and completed_at stay when crm-core applied the call.
ALTER TABLE activities
  ADD COLUMN call_started_at   timestamptz,
  ADD COLUMN call_answered_at  timestamptz,
  ADD COLUMN call_ended_at     timestamptz;

-- Why nobody could be matched: WITHHELD (the caller withheld their number), NOT_A_PHONE_NUMBER
-- (a SIP or app user), OUTBOUND_UNKNOWN_NUMBER (an outbound call to a number no record holds).
-- NULL: written by an earlier release; list_unidentified_calls reads it from the row (an
-- outbound call with a number is OUTBOUND_UNKNOWN_NUMBER, anything else WITHHELD).
-- The CHECK is checked at once, not NOT VALID: every existing row is NULL, and the table is
-- bounded by its retention (CRM_UNIDENTIFIED_CALLS_RETENTION_DAYS), so the scan under the lock is
-- short and nothing is left to validate in a later release.
ALTER TABLE unidentified_calls
  ADD COLUMN reason       text CONSTRAINT unidentified_calls_reason_check
    CHECK (reason IN ('WITHHELD', 'NOT_A_PHONE_NUMBER', 'OUTBOUND_UNKNOWN_NUMBER')),
  ADD COLUMN started_at   timestamptz,
  ADD COLUMN answered_at  timestamptz,
  ADD COLUMN ended_at     timestamptz;

-- A call-back folded into another when records merge or convert (0006, 0013) hands over its
-- missed calls, its calls and now its recordings: appended to the kept call-back's list (each URL
-- once, at most 20 in all, domain::kMaxRecordingsPerCall; a list still empty reads as the one URL
-- an earlier release kept), the kept one's single URL set from the folded one's when it had none.
-- How many URLs the cap left out is said in the folded call-back's description.
CREATE OR REPLACE FUNCTION fold_moved_call_back() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kept bigint;
  kept_urls text[];
  added text[];
  over int;
BEGIN
  SELECT id, CASE WHEN cardinality(call_recording_urls) = 0 AND call_recording_url IS NOT NULL
      THEN ARRAY[call_recording_url] ELSE call_recording_urls END
  INTO kept, kept_urls
  FROM activities
  WHERE owner_type = NEW.owner_type AND owner_id = NEW.owner_id AND call_back AND NOT completed
    AND id <> NEW.id
  FOR UPDATE;
  IF kept IS NULL THEN
    RETURN NEW;
  END IF;
  added := CASE WHEN cardinality(NEW.call_recording_urls) = 0 AND NEW.call_recording_url IS NOT NULL
    THEN ARRAY[NEW.call_recording_url] ELSE NEW.call_recording_urls END;
  over := call_recordings_over(kept_urls, added, 20);
  UPDATE activities
  SET missed_calls = missed_calls + NEW.missed_calls,
      last_attempt_at = greatest(last_attempt_at, NEW.last_attempt_at),
      deadline = least(deadline, NEW.deadline),
      call_recording_urls = append_call_recordings(kept_urls, added, 20),
      call_recording_url = coalesce(call_recording_url, NEW.call_recording_url)
  WHERE id = kept;
  NEW.completed := true;
  NEW.completed_at := now();
  NEW.description := NEW.description || ' (folded into call-back ' || kept || ')';
  IF over > 0 THEN
    NEW.description := NEW.description || ' (' || over || ' recordings over the cap not kept)';
  END IF;
  UPDATE activity_calls SET activity_id = kept WHERE activity_id = NEW.id;
  RETURN NEW;
END
$$;
