-- The CRM domain beyond leads: contacts, companies, deal pipelines and their stages, deals,
-- timelines (history), conversions, merges, settings and assignment queues. The rules these
-- tables hold are in services/crm-core/domain/ (plain C++); the constraints below make the states
-- those rules forbid impossible wherever SQL can say so.
--
-- Depends only on 0001/0002 (users, leads, activities). 0003 (lead statuses and sources as
-- tables) may run before it or not: source ids here are plain text, tied to lead_sources by a
-- later migration once both exist.

-- Folded search keys (domain FoldForSearch: lower-cased, accents removed) are written by the
-- application beside the names; prefix search uses them with text_pattern_ops, so "lea" finds
-- "Léa" whatever the database collation.

CREATE TABLE contacts (
  id                   bigserial PRIMARY KEY,
  first_name           text NOT NULL DEFAULT '',
  -- Never blank: an unknown last name is stored as crm_settings.last_name_placeholder.
  last_name            text NOT NULL CHECK (btrim(last_name) <> ''),
  search_first_last    text NOT NULL,  -- FoldForSearch("first last")
  search_last_first    text NOT NULL,  -- FoldForSearch("last first")
  position             text NOT NULL DEFAULT '',
  responsible_user_id  bigint REFERENCES users (id),
  source_id            text NOT NULL DEFAULT '',
  comments             text NOT NULL DEFAULT '',
  origin_event_id      text,            -- the inbound event that created it, if any
  version              bigint NOT NULL DEFAULT 1 CHECK (version > 0),  -- the etag
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  -- Set when folded into another contact by a merge; such a row is kept for its id only
  -- (Get answers NOT_FOUND naming the kept id) and holds no identities, links or activities.
  merged_into          bigint REFERENCES contacts (id) CHECK (merged_into <> id)
);
CREATE INDEX contacts_responsible ON contacts (responsible_user_id, id) WHERE merged_into IS NULL;
CREATE INDEX contacts_search_first_last ON contacts (search_first_last text_pattern_ops)
  WHERE merged_into IS NULL;
CREATE INDEX contacts_search_last_first ON contacts (search_last_first text_pattern_ops)
  WHERE merged_into IS NULL;

-- Normalised identities as lead_identities holds them (PHONE E.164, EMAIL lower-cased,
-- MESSENGER platform:user-id). Two contacts may share one (a switchboard); the primary key's
-- (kind, value) prefix is the lookup index inbound matching and FindByCommunication use.
CREATE TABLE contact_identities (
  kind        text NOT NULL CHECK (kind IN ('PHONE', 'EMAIL', 'MESSENGER')),
  value       text NOT NULL CHECK (value <> ''),
  contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  PRIMARY KEY (kind, value, contact_id)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

CREATE TABLE companies (
  id                   bigserial PRIMARY KEY,
  name                 text NOT NULL CHECK (btrim(name) <> ''),
  search_name          text NOT NULL,  -- FoldForSearch(name)
  industry             text NOT NULL DEFAULT '',
  website              text NOT NULL DEFAULT '',
  responsible_user_id  bigint REFERENCES users (id),
  source_id            text NOT NULL DEFAULT '',
  comments             text NOT NULL DEFAULT '',
  origin_event_id      text,
  version              bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  merged_into          bigint REFERENCES companies (id) CHECK (merged_into <> id)
);
CREATE INDEX companies_responsible ON companies (responsible_user_id, id) WHERE merged_into IS NULL;
CREATE INDEX companies_search_name ON companies (search_name text_pattern_ops)
  WHERE merged_into IS NULL;

CREATE TABLE company_identities (
  kind        text NOT NULL CHECK (kind IN ('PHONE', 'EMAIL', 'MESSENGER')),
  value       text NOT NULL CHECK (value <> ''),
  company_id  bigint NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  PRIMARY KEY (kind, value, company_id)
);
CREATE INDEX company_identities_company ON company_identities (company_id);

-- A contact works for several companies, each with a role ("Accountant"); one link per pair.
CREATE TABLE contact_companies (
  contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  company_id  bigint NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
  role        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (contact_id, company_id)
);
CREATE INDEX contact_companies_company ON contact_companies (company_id, contact_id);

-- Deal pipelines (Bitrix24's deal categories).
CREATE TABLE pipelines (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
  sort        integer NOT NULL DEFAULT 0,
  version     bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pipelines_name ON pipelines (lower(btrim(name)));

-- Ordered stages; ids are unique within their pipeline ("NEW" exists in every pipeline). The
-- domain keeps the rest of the invariants (at least one PROCESS and one FAILURE stage, PROCESS
-- stages first); these hold what SQL can: one SUCCESS stage at most, unique ids, names and
-- positions, and no removal while deals sit in a stage (deals' foreign key).
CREATE TABLE pipeline_stages (
  pipeline_id  bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  id           text NOT NULL CHECK (id ~ '^[A-Za-z0-9_:-]{1,50}$'),
  name         text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
  -- 10, 20, 30, … in stage order; deferrable so that a reorder rewrites them in one statement
  -- set without tripping over its own intermediate states.
  sort         integer NOT NULL,
  semantics    text NOT NULL CHECK (semantics IN ('PROCESS', 'SUCCESS', 'FAILURE')),
  -- A deal in this stage without activity for this many days is idle ("rotting").
  idle_days    integer CHECK (idle_days BETWEEN 1 AND 3650),
  PRIMARY KEY (pipeline_id, id),
  -- Target of deals' foreign key, which carries the semantics so deals.closed can follow it.
  UNIQUE (pipeline_id, id, semantics),
  CONSTRAINT pipeline_stages_sort UNIQUE (pipeline_id, sort) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE UNIQUE INDEX pipeline_stages_one_success ON pipeline_stages (pipeline_id)
  WHERE semantics = 'SUCCESS';
CREATE UNIQUE INDEX pipeline_stages_name ON pipeline_stages (pipeline_id, lower(btrim(name)));

CREATE TABLE deals (
  id                   bigserial PRIMARY KEY,
  title                text NOT NULL CHECK (btrim(title) <> ''),
  pipeline_id          bigint NOT NULL REFERENCES pipelines (id),
  stage_id             text NOT NULL,
  -- The stage's semantics, kept by the foreign key below (ON UPDATE CASCADE): a deal cannot sit
  -- in another pipeline's stage, nor claim a semantics its stage does not have.
  stage_semantics      text NOT NULL,
  -- Closed iff the stage is SUCCESS or FAILURE; derived, so it cannot disagree.
  closed               boolean GENERATED ALWAYS AS (stage_semantics <> 'PROCESS') STORED,
  -- Integer minor units of an ISO 4217 currency (the domain checks the code against the list).
  amount_minor         bigint NOT NULL DEFAULT 0
                       CHECK (amount_minor BETWEEN 0 AND 1000000000000000),
  currency             char(3) NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
  company_id           bigint REFERENCES companies (id) ON DELETE SET NULL,
  responsible_user_id  bigint REFERENCES users (id),
  expected_close_date  date,
  source_id            text NOT NULL DEFAULT '',
  lead_id              bigint REFERENCES leads (id) ON DELETE SET NULL,  -- converted from
  origin_event_id      text,
  -- Set at creation, on every stage move and every activity: idleness counts from it.
  last_activity_at     timestamptz NOT NULL DEFAULT now(),
  stage_changed_at     timestamptz NOT NULL DEFAULT now(),
  version              bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (pipeline_id, stage_id, stage_semantics)
    REFERENCES pipeline_stages (pipeline_id, id, semantics) ON UPDATE CASCADE
);
CREATE INDEX deals_stage ON deals (pipeline_id, stage_id, id);
CREATE INDEX deals_semantics ON deals (stage_semantics, id);
CREATE INDEX deals_responsible ON deals (responsible_user_id, id);
CREATE INDEX deals_company ON deals (company_id, id);
CREATE INDEX deals_company_open ON deals (company_id, id) WHERE NOT closed;
CREATE INDEX deals_lead ON deals (lead_id) WHERE lead_id IS NOT NULL;
-- Idle deals: per stage with idle_days, open deals whose last activity is older than the
-- threshold (WHERE pipeline_id = $1 AND stage_id = $2 AND NOT closed AND last_activity_at <= $3).
CREATE INDEX deals_idle ON deals (pipeline_id, stage_id, last_activity_at) WHERE NOT closed;

CREATE TABLE deal_contacts (
  deal_id     bigint NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
  contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (deal_id, contact_id)
);
CREATE INDEX deal_contacts_contact ON deal_contacts (contact_id, deal_id);

-- Every stage move of a deal (creation included: from_stage_id NULL), newest first per deal.
CREATE TABLE deal_stage_history (
  id                bigserial PRIMARY KEY,
  deal_id           bigint NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
  from_pipeline_id  bigint,
  from_stage_id     text,
  to_pipeline_id    bigint NOT NULL,
  to_stage_id       text NOT NULL,
  user_id           bigint REFERENCES users (id),  -- NULL: inbound traffic or the system
  event_id          text,
  at                timestamptz NOT NULL DEFAULT now(),
  CHECK ((from_pipeline_id IS NULL) = (from_stage_id IS NULL))
);
CREATE INDEX deal_stage_history_deal ON deal_stage_history (deal_id, id DESC);

-- Each record's timeline (common.proto HistoryEntry). entity_id is not a foreign key: the
-- timeline of a deleted or merged record stays readable.
CREATE TABLE history (
  id            bigserial PRIMARY KEY,
  entity_type   text NOT NULL CHECK (entity_type IN ('LEAD', 'CONTACT', 'COMPANY', 'DEAL')),
  entity_id     bigint NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('CREATED', 'FIELD_CHANGED', 'STATUS_CHANGED',
                                              'STAGE_CHANGED', 'LINKED', 'UNLINKED', 'MERGED',
                                              'CONVERTED', 'DELETED')),
  field         text NOT NULL DEFAULT '',
  old_value     text NOT NULL DEFAULT '',
  new_value     text NOT NULL DEFAULT '',
  related_type  text CHECK (related_type IN ('LEAD', 'CONTACT', 'COMPANY', 'DEAL')),
  related_id    bigint,
  user_id       bigint REFERENCES users (id),
  event_id      text,
  at            timestamptz NOT NULL DEFAULT now(),
  CHECK ((related_type IS NULL) = (related_id IS NULL)),
  CHECK (kind NOT IN ('FIELD_CHANGED', 'STATUS_CHANGED', 'STAGE_CHANGED') OR field <> ''),
  CHECK (kind NOT IN ('LINKED', 'UNLINKED', 'MERGED', 'CONVERTED') OR related_id IS NOT NULL)
);
CREATE INDEX history_entity ON history (entity_type, entity_id, id DESC);

-- What leads produced and where they point (a returning lead links to its contact/company).
ALTER TABLE leads
  ADD COLUMN contact_id            bigint REFERENCES contacts (id) ON DELETE SET NULL,
  ADD COLUMN company_id            bigint REFERENCES companies (id) ON DELETE SET NULL,
  ADD COLUMN converted_contact_id  bigint REFERENCES contacts (id) ON DELETE SET NULL,
  ADD COLUMN converted_company_id  bigint REFERENCES companies (id) ON DELETE SET NULL,
  ADD COLUMN converted_deal_id     bigint REFERENCES deals (id) ON DELETE SET NULL,
  ADD COLUMN merged_into           bigint REFERENCES leads (id),
  -- FoldForSearch("first last") and FoldForSearch(company_name), written by the application;
  -- '' for leads written before this migration until they are next updated.
  ADD COLUMN search_name           text NOT NULL DEFAULT '',
  ADD COLUMN search_company        text NOT NULL DEFAULT '',
  ADD CONSTRAINT leads_not_merged_into_self CHECK (merged_into <> id);
CREATE INDEX leads_contact ON leads (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX leads_company ON leads (company_id) WHERE company_id IS NOT NULL;
-- Every column that references a row which can be deleted or merged gets an index, or deleting
-- that row scans the whole referencing table inside the delete's locks (a second per contact
-- with a million leads).
CREATE INDEX leads_converted_contact ON leads (converted_contact_id)
  WHERE converted_contact_id IS NOT NULL;
CREATE INDEX leads_converted_company ON leads (converted_company_id)
  WHERE converted_company_id IS NOT NULL;
CREATE INDEX leads_converted_deal ON leads (converted_deal_id) WHERE converted_deal_id IS NOT NULL;
CREATE INDEX leads_merged_into ON leads (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX contacts_merged_into ON contacts (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX companies_merged_into ON companies (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX leads_search_name ON leads (search_name text_pattern_ops) WHERE search_name <> '';
CREATE INDEX leads_search_company ON leads (search_company text_pattern_ops)
  WHERE search_company <> '';

-- ConvertLead, idempotent by request id and at most once per lead.
CREATE TABLE conversions (
  id          bigserial PRIMARY KEY,
  request_id  text UNIQUE CHECK (request_id <> '' AND length(request_id) <= 128),  -- NULL: none
  lead_id     bigint NOT NULL UNIQUE REFERENCES leads (id) ON DELETE CASCADE,
  produce     text NOT NULL CHECK (produce IN ('CONTACT_COMPANY_DEAL', 'CONTACT_COMPANY',
                                               'CONTACT_DEAL', 'CONTACT', 'COMPANY', 'DEAL')),
  contact_id  bigint REFERENCES contacts (id) ON DELETE SET NULL,
  company_id  bigint REFERENCES companies (id) ON DELETE SET NULL,
  deal_id     bigint REFERENCES deals (id) ON DELETE SET NULL,
  user_id     bigint REFERENCES users (id),
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversions_contact ON conversions (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX conversions_company ON conversions (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX conversions_deal ON conversions (deal_id) WHERE deal_id IS NOT NULL;

-- Each folded record, once: merging it again into the same kept record is a no-op, into another
-- one an error naming this one.
CREATE TABLE merges (
  entity_type  text NOT NULL CHECK (entity_type IN ('LEAD', 'CONTACT', 'COMPANY')),
  folded_id    bigint NOT NULL,
  kept_id      bigint NOT NULL,
  user_id      bigint REFERENCES users (id),
  at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity_type, folded_id),
  CHECK (folded_id <> kept_id)
);
CREATE INDEX merges_kept ON merges (entity_type, kept_id);

-- Round-robin queues, one row per queue ("channel:EMAIL", "pipeline:1", or a name settings give
-- a channel). Writers advance one queue's position in a short transaction of its own
-- (UPDATE … SET position = position + n RETURNING position), never inside the batch transaction,
-- so only writers of the same queue meet, and only for that statement.
CREATE TABLE assignment_queues (
  queue_key   text PRIMARY KEY CHECK (queue_key ~ '^[A-Za-z0-9_:.-]{1,100}$'),
  position    bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);
-- A queue's users in order; a queue without members rotates over every active user.
CREATE TABLE assignment_queue_members (
  queue_key  text NOT NULL REFERENCES assignment_queues (queue_key) ON DELETE CASCADE,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  sort       integer NOT NULL DEFAULT 0,
  PRIMARY KEY (queue_key, user_id)
);

-- The CRM's settings: one row, edited by admins (SettingsService).
CREATE TABLE crm_settings (
  id                     integer PRIMARY KEY CHECK (id = 1),
  mode                   text NOT NULL DEFAULT 'CLASSIC' CHECK (mode IN ('CLASSIC', 'SIMPLE')),
  lead_title_template    text NOT NULL DEFAULT '{city} – {name} – {need}'
                         CHECK (btrim(lead_title_template) <> ''),
  last_name_placeholder  text NOT NULL DEFAULT 'Unknown' CHECK (btrim(last_name_placeholder) <> ''),
  -- Where simple-mode and repeat deals go, and ConvertLead's default pipeline.
  inbound_pipeline_id    bigint NOT NULL REFERENCES pipelines (id),
  -- A returning customer with nothing open gets a repeat lead (a deal in simple mode); off: only
  -- an activity on the contact.
  repeat_rule            boolean NOT NULL DEFAULT true,
  default_currency       char(3) NOT NULL DEFAULT 'EUR' CHECK (default_currency ~ '^[A-Z]{3}$'),
  version                bigint NOT NULL DEFAULT 1 CHECK (version > 0),
  updated_at             timestamptz NOT NULL DEFAULT now()
);

-- The queue each channel's new records rotate over (absent: "channel:<CHANNEL>").
CREATE TABLE channel_queues (
  channel    text PRIMARY KEY CHECK (channel ~ '^[A-Z_]{1,50}$'),
  queue_key  text NOT NULL REFERENCES assignment_queues (queue_key)
);

-- Switching classic → simple converts the open leads as a resumable background job: it walks
-- the open leads by id from last_lead_id, so a restart continues where it stopped.
CREATE TABLE mode_switch_jobs (
  id            bigserial PRIMARY KEY,
  to_mode       text NOT NULL CHECK (to_mode IN ('CLASSIC', 'SIMPLE')),
  state         text NOT NULL DEFAULT 'RUNNING'
                CHECK (state IN ('RUNNING', 'DONE', 'FAILED', 'CANCELLED')),
  total         bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
  done          bigint NOT NULL DEFAULT 0 CHECK (done >= 0),
  failed        bigint NOT NULL DEFAULT 0 CHECK (failed >= 0),
  last_lead_id  bigint NOT NULL DEFAULT 0,
  error         text NOT NULL DEFAULT '',
  user_id       bigint REFERENCES users (id),
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  CHECK ((state = 'RUNNING') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX mode_switch_jobs_one_running ON mode_switch_jobs ((true))
  WHERE state = 'RUNNING';

-- Seeds: the default pipeline with Bitrix24's default deal stages (domain DefaultPipeline()),
-- the settings pointing at it, and the channel and pipeline queues.
INSERT INTO pipelines (id, name, sort) VALUES (1, 'Sales', 10);
SELECT setval('pipelines_id_seq', 1);
INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) VALUES
  (1, 'NEW', 'New', 10, 'PROCESS'),
  (1, 'PREPARATION', 'Preparation of documents', 20, 'PROCESS'),
  (1, 'PREPAYMENT_INVOICE', 'Invoice', 30, 'PROCESS'),
  (1, 'EXECUTING', 'In progress', 40, 'PROCESS'),
  (1, 'FINAL_INVOICE', 'Final invoice', 50, 'PROCESS'),
  (1, 'WON', 'Won', 60, 'SUCCESS'),
  (1, 'LOSE', 'Lost', 70, 'FAILURE');
INSERT INTO crm_settings (id, inbound_pipeline_id) VALUES (1, 1);
INSERT INTO assignment_queues (queue_key) VALUES
  ('channel:WEB_FORM'), ('channel:EMAIL'), ('channel:CALL'), ('channel:MESSENGER'),
  ('channel:WALK_IN'), ('pipeline:1');
