-- One timeline entry (migrations/0004_domain.sql, history).
INSERT INTO history (entity_type, entity_id, kind, field, old_value, new_value, related_type,
                     related_id, user_id, event_id)
VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), nullif($8, 0), nullif($9, 0), nullif($10, ''))
