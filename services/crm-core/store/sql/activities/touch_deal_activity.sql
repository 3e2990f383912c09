-- A deal's idleness counts from its last activity (created or completed).
UPDATE deals SET last_activity_at = now() WHERE id = $1
