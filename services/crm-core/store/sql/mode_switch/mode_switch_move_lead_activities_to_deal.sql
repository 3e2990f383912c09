-- A converted lead's activities follow it to its deal.
UPDATE activities SET owner_type = 'DEAL', owner_id = $2 WHERE owner_type = 'LEAD' AND owner_id = $1
