-- Validates 0013's foreign key from activity_calls to activities. An activity the previous release
-- deleted while 0013 copied its call left a row pointing at nothing: it is removed first (it held
-- the call of an activity that no longer exists). VALIDATE takes SHARE UPDATE EXCLUSIVE on
-- activity_calls and ROW SHARE on activities: nobody's reads or writes wait for it.
DELETE FROM activity_calls AS c
WHERE NOT EXISTS (SELECT 1 FROM activities AS a WHERE a.id = c.activity_id);
ALTER TABLE activity_calls VALIDATE CONSTRAINT activity_calls_activity_fk;
