SELECT last_name_placeholder FROM crm_settings WHERE id = 1
