-- The lead's activities follow it (to the deal, else the contact, else the company); a deal
-- created now counts as active from its creation.
UPDATE activities SET owner_type = $2, owner_id = $3 WHERE owner_type = 'LEAD' AND owner_id = $1
