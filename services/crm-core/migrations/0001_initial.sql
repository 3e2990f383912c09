-- Users who get leads assigned; deactivated users keep their history but get no new leads.
CREATE TABLE users (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL CHECK (name <> ''),
  email       text NOT NULL DEFAULT '',
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Round-robin position over the active users; one row.
CREATE TABLE assignment_cursor (
  id        integer PRIMARY KEY CHECK (id = 1),
  position  bigint NOT NULL
);
INSERT INTO assignment_cursor VALUES (1, 0);

CREATE TABLE leads (
  id                   bigserial PRIMARY KEY,
  title                text NOT NULL,
  status               text NOT NULL DEFAULT 'NEW'
                       CHECK (status IN ('NEW', 'IN_PROCESS', 'PROCESSED', 'JUNK', 'CONVERTED')),
  source               text NOT NULL
                       CHECK (source IN ('WEB_FORM', 'EMAIL', 'CALL', 'MESSENGER', 'WALK_IN')),
  first_name           text NOT NULL DEFAULT '',
  last_name            text NOT NULL DEFAULT '',
  company_name         text NOT NULL DEFAULT '',
  city                 text NOT NULL DEFAULT '',
  comments             text NOT NULL DEFAULT '',
  source_reference     text NOT NULL DEFAULT '',
  utm                  jsonb NOT NULL DEFAULT '{}',
  custom_fields        jsonb NOT NULL DEFAULT '{}',
  page_url             text NOT NULL DEFAULT '',
  referrer             text NOT NULL DEFAULT '',
  responsible_user_id  bigint REFERENCES users (id),
  repeat_count         integer NOT NULL DEFAULT 0,
  is_returning         boolean NOT NULL DEFAULT false,
  previous_lead_id     bigint REFERENCES leads (id),
  origin_event_id      text,
  version              bigint NOT NULL DEFAULT 1,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leads_status_id ON leads (status, id);
CREATE INDEX leads_source_id ON leads (source, id);
CREATE INDEX leads_responsible_id ON leads (responsible_user_id, id);
CREATE INDEX leads_created_at ON leads (created_at);

-- Every normalised way to reach a lead's person: what inbound events are matched on.
CREATE TABLE lead_identities (
  kind     text NOT NULL CHECK (kind IN ('PHONE', 'EMAIL', 'MESSENGER')),
  value    text NOT NULL CHECK (value <> ''),
  lead_id  bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
  PRIMARY KEY (kind, value, lead_id)
);
CREATE INDEX lead_identities_lead ON lead_identities (lead_id);

CREATE TABLE activities (
  id                   bigserial PRIMARY KEY,
  type                 text NOT NULL
                       CHECK (type IN ('TASK', 'EMAIL', 'MEETING', 'CALL', 'CALL_LIST', 'VISIT')),
  owner_type           text NOT NULL CHECK (owner_type IN ('LEAD')),
  owner_id             bigint NOT NULL,
  subject              text NOT NULL,
  description          text NOT NULL DEFAULT '',
  responsible_user_id  bigint REFERENCES users (id),
  completed            boolean NOT NULL DEFAULT false,
  deadline             timestamptz,
  completed_at         timestamptz,
  origin_event_id      text,
  created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_owner ON activities (owner_type, owner_id, id);
CREATE INDEX activities_responsible ON activities (responsible_user_id, completed, id);

-- The exactly-once guarantee: an event's effects and its id commit in one transaction.
CREATE TABLE processed_events (
  event_id      text PRIMARY KEY,
  processed_at  timestamptz NOT NULL DEFAULT now()
);
