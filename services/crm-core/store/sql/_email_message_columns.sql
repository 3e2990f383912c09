-- The columns store/email_repository.cc's ReadMessage reads, in this order.
SELECT id, coalesce(message_id, ''), event_id, thread_key, owner_type, owner_id,
  coalesce(activity_id, 0), mailbox, from_address, from_name, reply_to_address,
  array_to_json(to_addresses)::text, array_to_json(cc_addresses)::text,
  coalesce((extract(epoch FROM sent_at) * 1000000)::bigint, 0), subject, body, in_reply_to,
  array_to_json(refs)::text, attachments::text,
  (extract(epoch FROM received_at) * 1000000)::bigint, content_kept, relay_address,
  to_addresses_omitted, cc_addresses_omitted, array_to_json(truncated_headers)::text
FROM email_messages
