-- The relay sender of a kept message (docs/email-ingest.md, "Mail written on behalf of someone
-- else"): a form builder's From, kept beside the person's address so that a user sees the mail
-- came through it. Only kept and shown: never an identity, never matched. A new column with a
-- constant default: no table rewrite, and a binary that does not know it writes ''.
ALTER TABLE email_messages ADD COLUMN relay_address text NOT NULL DEFAULT '';
