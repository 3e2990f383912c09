-- What the caps left out of a kept message (docs/email-ingest.md, "Caps"): the number of To and
-- Cc addresses the message named beyond those kept, and the header fields email-ingest cut, so
-- that a reader never takes a cut list or header for the whole. New columns with constant
-- defaults: no table rewrite, and a binary that does not know them writes 0 and '{}'.
ALTER TABLE email_messages ADD COLUMN to_addresses_omitted integer NOT NULL DEFAULT 0;
ALTER TABLE email_messages ADD COLUMN cc_addresses_omitted integer NOT NULL DEFAULT 0;
ALTER TABLE email_messages ADD COLUMN truncated_headers text[] NOT NULL DEFAULT '{}';
