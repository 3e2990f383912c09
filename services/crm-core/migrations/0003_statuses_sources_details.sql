-- Lead statuses and sources become data the business configures (StatusService) instead of
-- CHECK lists; web-form columns move off leads into source_details, so that a lead made from an
-- email or a call carries no empty web-form columns; activities may belong to any record kind.

CREATE TABLE lead_statuses (
  id         text PRIMARY KEY CHECK (id ~ '^[A-Z][A-Z0-9_]{0,49}$'),
  name       text NOT NULL CHECK (name <> ''),
  sort       integer NOT NULL,
  -- PROCESS: open (inbound traffic joins the lead); SUCCESS and FAILURE close it.
  semantics  text NOT NULL CHECK (semantics IN ('PROCESS', 'SUCCESS', 'FAILURE')),
  system     boolean NOT NULL DEFAULT false
);
-- Exactly one success status (CONVERTED): conversion sets it.
CREATE UNIQUE INDEX lead_statuses_one_success ON lead_statuses ((true)) WHERE semantics = 'SUCCESS';
INSERT INTO lead_statuses (id, name, sort, semantics, system) VALUES
  ('NEW', 'New', 10, 'PROCESS', true),
  ('IN_PROCESS', 'In progress', 20, 'PROCESS', true),
  ('PROCESSED', 'Processed', 30, 'FAILURE', true),
  ('CONVERTED', 'Converted', 40, 'SUCCESS', true),
  ('JUNK', 'Junk', 50, 'FAILURE', true);

CREATE TABLE lead_sources (
  id      text PRIMARY KEY CHECK (id ~ '^[A-Z][A-Z0-9_]{0,49}$'),
  name    text NOT NULL CHECK (name <> ''),
  sort    integer NOT NULL,
  system  boolean NOT NULL DEFAULT false
);
INSERT INTO lead_sources (id, name, sort, system) VALUES
  ('WEB_FORM', 'Web form', 10, true),
  ('EMAIL', 'Email', 20, true),
  ('CALL', 'Call', 30, true),
  ('MESSENGER', 'Messenger', 40, true),
  ('WALK_IN', 'Walk-in', 50, true);

ALTER TABLE leads DROP CONSTRAINT leads_status_check;
ALTER TABLE leads DROP CONSTRAINT leads_source_check;
ALTER TABLE leads ADD CONSTRAINT leads_status_fkey FOREIGN KEY (status) REFERENCES lead_statuses (id);
ALTER TABLE leads ADD CONSTRAINT leads_source_fkey FOREIGN KEY (source) REFERENCES lead_sources (id);

-- A flat string map: reference, page_url, referrer, utm_<key>, field:<custom field>, and what
-- other channels tell (subject, call outcome, conversation…).
ALTER TABLE leads ADD COLUMN source_details jsonb NOT NULL DEFAULT '{}';
UPDATE leads SET source_details =
    jsonb_strip_nulls(jsonb_build_object('reference', NULLIF(source_reference, ''),
                                         'page_url', NULLIF(page_url, ''),
                                         'referrer', NULLIF(referrer, '')))
    || (SELECT coalesce(jsonb_object_agg('utm_' || key, value), '{}') FROM jsonb_each(utm))
    || (SELECT coalesce(jsonb_object_agg('field:' || key, value), '{}')
        FROM jsonb_each(custom_fields));
-- Expand, not contract: the old columns stay (no longer written or read) so that pods of the
-- previous release, still running during a rolling upgrade, keep inserting and reading leads
-- instead of failing on a missing column. A later migration drops them once no such pod can run
-- (docs/operations.md, "Upgrade").

ALTER TABLE activities DROP CONSTRAINT activities_owner_type_check;
ALTER TABLE activities ADD CONSTRAINT activities_owner_type_check
  CHECK (owner_type IN ('LEAD', 'CONTACT', 'COMPANY', 'DEAL'));
