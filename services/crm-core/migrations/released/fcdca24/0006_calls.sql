-- The telephony channel's rules (docs/architecture.md, "Calls"): the call's facts on CALL
-- activities, at most one open call-back per record, calls nobody can be matched to, the call
-- settings, the per-line queues, and users' phone extensions.
--
-- Depends on 0001 (activities, users) and 0004 (crm_settings, assignment_queues).

-- A CALL activity made by a call event carries the call. A call-back (call_back) is the open
-- "call back" task of a missed call: further missed calls from the same person raise
-- missed_calls and last_attempt_at on it instead of stacking new ones.
ALTER TABLE activities
  ADD COLUMN call_back              boolean NOT NULL DEFAULT false,
  ADD COLUMN call_id                text,  -- "<provider>:<provider call id>" of the latest call
  ADD COLUMN call_direction         text CHECK (call_direction IN ('INBOUND', 'OUTBOUND')),
  ADD COLUMN call_outcome           text CHECK (call_outcome IN ('MISSED', 'ANSWERED', 'BUSY',
                                                                 'FAILED', 'VOICEMAIL',
                                                                 'CANCELED')),
  ADD COLUMN call_number            text,  -- the other party's number (E.164 when it is one)
  ADD COLUMN call_line              text,  -- our number or line it came in on / went out from
  ADD COLUMN call_duration_seconds  integer CHECK (call_duration_seconds >= 0),
  ADD COLUMN call_operator          text,  -- who took or made it, as the provider named them
  ADD COLUMN call_recording_url     text,
  ADD COLUMN missed_calls           integer NOT NULL DEFAULT 0 CHECK (missed_calls >= 0),
  ADD COLUMN last_attempt_at        timestamptz,
  -- The answered outbound call that completed a call-back.
  ADD COLUMN completed_by_event_id  text,
  ADD CONSTRAINT activities_call_back_is_a_call CHECK (NOT call_back OR type = 'CALL');

-- The invariant, enforced by the database whatever the application does: one open call-back per
-- record. The consumer upserts into it (ON CONFLICT … DO UPDATE), so two missed calls of one
-- person in one batch or on two consumers raise one call-back's count.
CREATE UNIQUE INDEX activities_one_open_call_back ON activities (owner_type, owner_id)
  WHERE call_back AND NOT completed;
-- A recording that arrives after its call finds the call's activity.
CREATE INDEX activities_call_id ON activities (call_id) WHERE call_id IS NOT NULL;
-- An answered outbound call completes the open call-backs of the number it dialled.
CREATE INDEX activities_open_call_back_number ON activities (call_number)
  WHERE call_back AND NOT completed;

-- Calls that cannot be matched to anybody (a withheld number, a SIP user, an outbound call to an
-- unknown number): kept visible (CallService.ListUnidentifiedCalls), never made into a lead.
CREATE TABLE unidentified_calls (
  id                   bigserial PRIMARY KEY,
  call_id              text NOT NULL,
  direction            text NOT NULL CHECK (direction IN ('INBOUND', 'OUTBOUND')),
  outcome              text NOT NULL CHECK (outcome IN ('MISSED', 'ANSWERED', 'BUSY', 'FAILED',
                                                        'VOICEMAIL', 'CANCELED')),
  from_number          text NOT NULL DEFAULT '',
  to_number            text NOT NULL DEFAULT '',
  line                 text NOT NULL DEFAULT '',
  duration_seconds     integer NOT NULL DEFAULT 0 CHECK (duration_seconds >= 0),
  operator             text NOT NULL DEFAULT '',
  recording_url        text NOT NULL DEFAULT '',
  responsible_user_id  bigint REFERENCES users (id),
  origin_event_id      text NOT NULL UNIQUE,
  created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unidentified_calls_call_id ON unidentified_calls (call_id);

ALTER TABLE crm_settings
  -- A missed call's call-back is due this many minutes after the first missed call.
  ADD COLUMN call_back_sla_minutes       integer NOT NULL DEFAULT 15
                                         CHECK (call_back_sla_minutes BETWEEN 1 AND 10080),
  -- An outbound call to an unknown number makes a lead (a contact and a deal in simple mode);
  -- off: it goes to the unidentified calls.
  ADD COLUMN outbound_call_creates_lead  boolean NOT NULL DEFAULT false;

-- The queue a line's new records and call-backs rotate over (a line not listed: the CALL
-- channel's queue, as channel_queues says, else "channel:CALL").
CREATE TABLE call_line_queues (
  line       text PRIMARY KEY CHECK (line ~ '^[A-Za-z0-9+_:.@-]{1,100}$'),
  queue_key  text NOT NULL REFERENCES assignment_queues (queue_key)
);

-- The phone extension a user answers on ("201"): a call taken or made from it is theirs.
ALTER TABLE users ADD COLUMN extension text CHECK (extension ~ '^[A-Za-z0-9*#_.-]{1,32}$');
CREATE UNIQUE INDEX users_extension ON users (extension) WHERE extension IS NOT NULL;

-- Merges, conversions and the mode switch move a record's activities to another record. An open
-- call-back moving onto a record that already has one is folded into it (its missed calls added,
-- the earlier deadline kept) and closed, so the invariant holds through those moves too and
-- they never fail on it.
CREATE FUNCTION fold_moved_call_back() RETURNS trigger LANGUAGE plpgsql AS $$
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
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER activities_fold_moved_call_back
  BEFORE UPDATE OF owner_type, owner_id ON activities
  FOR EACH ROW
  WHEN (NEW.call_back AND NOT NEW.completed
        AND (NEW.owner_type, NEW.owner_id) IS DISTINCT FROM (OLD.owner_type, OLD.owner_id))
  EXECUTE FUNCTION fold_moved_call_back();
