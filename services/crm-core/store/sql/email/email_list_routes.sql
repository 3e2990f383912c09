-- Every email route (SettingsService), by address.
SELECT address, coalesce(pipeline_id, 0), coalesce(queue_key, '') FROM email_routes
ORDER BY address
