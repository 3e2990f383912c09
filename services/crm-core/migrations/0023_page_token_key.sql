-- The key the API signs its page tokens with (api/common/paging.h) unless CRM_PAGE_TOKEN_KEY sets
-- one: generated here once, 244 random bits (pg_strong_random through gen_random_uuid), so that
-- every API replica and every restart signs and accepts the same tokens without configuration.
-- Replacing the row (or setting CRM_PAGE_TOKEN_KEY) invalidates the tokens already given out:
-- their clients start again from the first page. A new table: nothing else is locked.
CREATE TABLE server_keys (
  name        text PRIMARY KEY CHECK (name IN ('page_token')),
  key         text NOT NULL CHECK (length(key) BETWEEN 32 AND 256),
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO server_keys (name, key)
VALUES ('page_token', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (name) DO NOTHING;
