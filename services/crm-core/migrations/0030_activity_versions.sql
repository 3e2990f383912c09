-- Activities get a version, their etag (ActivityService Get/Update/Delete): an update or delete
-- made with the etag read before another write is refused (ABORTED) instead of overwriting it.
--
-- The version moves with every write of the row whoever makes it, so it is kept by a trigger,
-- not by the statements: this release's API, the inbound consumer folding a missed call into a
-- call-back, merges and conversions moving activities, and, during a rolling upgrade, the
-- previous release, which knows nothing of the column (its inserts take the default). A new
-- column with a constant default (no table rewrite) and a trigger: both take their lock on
-- activities only for the statement.
ALTER TABLE activities ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION bump_activity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := OLD.version + 1;
  RETURN NEW;
END
$$;
CREATE TRIGGER activities_version
  BEFORE UPDATE ON activities
  FOR EACH ROW
  EXECUTE FUNCTION bump_activity_version();
