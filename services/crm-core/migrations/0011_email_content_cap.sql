-- The email channel's caps (docs/architecture.md, "Email: threads, messages, routes"): past the
-- messages kept with their content per thread or per record, a message is still kept for
-- threading and duplicates, with its headers only. A new column with a constant default: no
-- table rewrite, and a binary that does not know it writes rows with their content.
ALTER TABLE email_messages ADD COLUMN content_kept boolean NOT NULL DEFAULT true;
