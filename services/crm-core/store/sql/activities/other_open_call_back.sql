-- The open call-back of record ($1, $2) other than activity $3; no row: none. A record has at
-- most one (activities_one_open_call_back).
SELECT id FROM activities
WHERE owner_type = $1 AND owner_id = $2 AND call_back AND NOT completed AND id <> $3
