-- The page token key migration 0023 generated (api/common/paging.h); none before it.
SELECT key FROM server_keys WHERE name = 'page_token'
