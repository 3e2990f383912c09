-- leadflow:no-transaction
-- A message that arrives after a reply naming it (the reply was applied first: a backlog, a
-- sender retrying after a 451, a mailbox polled with its history) finds the thread that reply
-- started by the kept messages naming its Message-ID (docs/architecture.md, "Email: threads,
-- messages, routes"). email_messages may already hold data: built without blocking its writers
-- (docs/operations.md, "Migrations and rolling upgrades").
CREATE INDEX CONCURRENTLY IF NOT EXISTS email_messages_in_reply_to ON email_messages (in_reply_to)
  WHERE in_reply_to <> '';
CREATE INDEX CONCURRENTLY IF NOT EXISTS email_messages_refs ON email_messages USING gin (refs);
-- A reply to mail we sent from elsewhere (a salesperson's own mail program: its Message-ID was
-- never kept) finds the reply task already open for its sender.
CREATE INDEX CONCURRENTLY IF NOT EXISTS email_messages_from ON email_messages (lower(from_address), id);
