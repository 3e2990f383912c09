-- The email channel's rules (docs/architecture.md, "Email: threads, messages, routes"): every
-- received message is kept, attached to the record and the activity it went to, so that a reply
-- naming it (In-Reply-To / References) goes to the same record and the thread's open "reply"
-- activity; and recipient addresses of ours (sales@, support@) route new records to a pipeline
-- and a queue of their own.
--
-- Depends on 0001 (activities) and 0004 (pipelines, assignment_queues).

CREATE TABLE email_messages (
  id                bigserial PRIMARY KEY,
  -- Angle brackets removed, as email-ingest gives it; NULL when the message had none (such a
  -- message starts a thread nobody can reply into). One row per Message-ID: the same message
  -- delivered twice (SMTP and IMAP, two recipients) has one effect.
  message_id        text UNIQUE CHECK (message_id <> '' AND length(message_id) <= 998),
  event_id          text NOT NULL,
  -- The thread: the Message-ID (else the event id) of the first stored message of the thread.
  thread_key        text NOT NULL CHECK (thread_key <> '' AND length(thread_key) <= 998),
  -- What it is attached to. Not foreign keys: a merged or deleted record's mail stays readable;
  -- the rules follow merges when they look a thread up.
  owner_type        text NOT NULL CHECK (owner_type IN ('LEAD', 'CONTACT', 'COMPANY', 'DEAL')),
  owner_id          bigint NOT NULL,
  activity_id       bigint REFERENCES activities (id) ON DELETE SET NULL,
  mailbox           text NOT NULL DEFAULT '' CHECK (length(mailbox) <= 320),
  from_address      text NOT NULL DEFAULT '' CHECK (length(from_address) <= 320),
  from_name         text NOT NULL DEFAULT '' CHECK (length(from_name) <= 500),
  reply_to_address  text NOT NULL DEFAULT '' CHECK (length(reply_to_address) <= 320),
  to_addresses      text[] NOT NULL DEFAULT '{}' CHECK (cardinality(to_addresses) <= 100),
  cc_addresses      text[] NOT NULL DEFAULT '{}' CHECK (cardinality(cc_addresses) <= 100),
  sent_at           timestamptz,  -- the Date header, when readable
  subject           text NOT NULL DEFAULT '' CHECK (length(subject) <= 1000),
  body              text NOT NULL DEFAULT '' CHECK (octet_length(body) <= 65536),
  in_reply_to       text NOT NULL DEFAULT '' CHECK (length(in_reply_to) <= 998),
  refs              text[] NOT NULL DEFAULT '{}' CHECK (cardinality(refs) <= 50),
  -- [{"filename", "content_type", "size_bytes", "inline"}], at most 100, without content.
  attachments       jsonb NOT NULL DEFAULT '[]'
                    CHECK (jsonb_typeof(attachments) = 'array'
                           AND jsonb_array_length(attachments) <= 100),
  received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_messages_thread ON email_messages (thread_key, id);
CREATE INDEX email_messages_activity ON email_messages (activity_id, id)
  WHERE activity_id IS NOT NULL;
CREATE INDEX email_messages_owner ON email_messages (owner_type, owner_id, id);

-- The consumer finds the activity an event made by its origin.
CREATE INDEX activities_origin_event ON activities (origin_event_id)
  WHERE origin_event_id IS NOT NULL;

-- A recipient address of ours → where the new records of mail sent to it go: the pipeline of
-- simple-mode deals (NULL: crm_settings.inbound_pipeline_id) and the queue new leads and deals
-- rotate over (NULL: the channel's). Unknown addresses use the defaults.
CREATE TABLE email_routes (
  address      text PRIMARY KEY CHECK (address ~ '^[^@\s]{1,64}@[^@\s]{1,255}$'
                                       AND address = lower(address)),
  pipeline_id  bigint REFERENCES pipelines (id),
  queue_key    text REFERENCES assignment_queues (queue_key)
);
CREATE INDEX email_routes_pipeline ON email_routes (pipeline_id) WHERE pipeline_id IS NOT NULL;
CREATE INDEX email_routes_queue ON email_routes (queue_key) WHERE queue_key IS NOT NULL;
