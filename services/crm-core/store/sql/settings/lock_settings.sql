SELECT version FROM crm_settings WHERE id = 1 FOR UPDATE
