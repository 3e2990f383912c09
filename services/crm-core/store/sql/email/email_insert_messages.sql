-- The kept messages of a batch, one JSON object each (inbound/email_thread.cc writes them). A
-- Message-ID stored meanwhile is left alone: one row per message. `content_kept` false: past a cap,
-- only the headers are kept (text, recipients, references and attachments empty). `relay_address`:
-- the relay sender that wrote on behalf of the person, kept to be shown. `to_omitted`,
-- `cc_omitted`, `truncated_headers`: what the caps left out (migrations/0028).
INSERT INTO email_messages (message_id, event_id, thread_key, owner_type, owner_id, activity_id,
  mailbox, from_address, from_name, reply_to_address, to_addresses, cc_addresses, sent_at,
  subject, body, in_reply_to, refs, attachments, content_kept, relay_address,
  to_addresses_omitted, cc_addresses_omitted, truncated_headers)
SELECT nullif(m->>'message_id', ''), m->>'event_id', m->>'thread_key', m->>'owner_type',
  (m->>'owner_id')::bigint, nullif((m->>'activity_id')::bigint, 0), m->>'mailbox',
  m->>'from_address', m->>'from_name', m->>'reply_to_address',
  ARRAY(SELECT jsonb_array_elements_text(m->'to')), ARRAY(SELECT jsonb_array_elements_text(m->'cc')),
  CASE WHEN (m->>'sent_at_micros')::bigint <> 0
       THEN to_timestamp((m->>'sent_at_micros')::bigint / 1000000.0) END,
  m->>'subject', m->>'body', m->>'in_reply_to', ARRAY(SELECT jsonb_array_elements_text(m->'refs')),
  m->'attachments', (m->>'content_kept')::boolean, m->>'relay_address',
  coalesce((m->>'to_omitted')::integer, 0), coalesce((m->>'cc_omitted')::integer, 0),
  ARRAY(SELECT jsonb_array_elements_text(coalesce(m->'truncated_headers', '[]'::jsonb)))
FROM jsonb_array_elements($1::jsonb) AS x (m)
ON CONFLICT (message_id) DO NOTHING
