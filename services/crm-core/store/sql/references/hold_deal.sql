-- The deal a write names, held until the transaction ends (HoldReferenced), as hold_contact.
-- No row: it does not exist; deals are never merged (0).
SELECT 0::bigint FROM deals WHERE id = $1 FOR KEY SHARE
