SELECT mode, lead_title_template, last_name_placeholder, inbound_pipeline_id, repeat_rule,
  default_currency, version, (extract(epoch FROM updated_at) * 1000000)::bigint
FROM crm_settings WHERE id = 1
