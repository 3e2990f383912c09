-- The settings the inbound rules read once per batch: mode, repeat rule, placeholder, title
-- template, the inbound pipeline and its first PROCESS stage, and the per-channel queues.
SELECT s.mode, s.repeat_rule, s.last_name_placeholder, s.lead_title_template,
  s.inbound_pipeline_id,
  coalesce((SELECT st.id FROM pipeline_stages AS st
            WHERE st.pipeline_id = s.inbound_pipeline_id AND st.semantics = 'PROCESS'
            ORDER BY st.sort LIMIT 1), ''),
  coalesce((SELECT json_object_agg(channel, queue_key) FROM channel_queues), '{}')::text
FROM crm_settings AS s WHERE s.id = 1
