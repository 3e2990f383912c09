UPDATE crm_settings SET mode = $1, lead_title_template = $2, last_name_placeholder = $3,
  inbound_pipeline_id = $4, repeat_rule = $5, default_currency = $6, version = version + 1,
  updated_at = now()
WHERE id = 1
