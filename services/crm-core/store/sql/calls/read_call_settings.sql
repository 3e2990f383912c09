-- crm_settings' call part: the call-back SLA, whether outbound calls to unknown numbers make
-- leads, and the per-line queues.
SELECT s.call_back_sla_minutes, s.outbound_call_creates_lead,
  coalesce((SELECT json_object_agg(line, queue_key) FROM call_line_queues), '{}')::text
FROM crm_settings AS s WHERE s.id = 1
