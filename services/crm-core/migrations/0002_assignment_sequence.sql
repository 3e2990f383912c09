-- Round-robin positions come from a sequence instead of the single assignment_cursor row that
-- every batch and every walk-in lead updated (and so serialised on). nextval never blocks and is
-- not rolled back: a rolled-back batch skips a position, which only shifts the rotation.
CREATE SEQUENCE assignment_position MINVALUE 0 START WITH 0;
SELECT setval('assignment_position', (SELECT position FROM assignment_cursor WHERE id = 1), false);
DROP TABLE assignment_cursor;
