-- A lead's folded search keys (naming PersonKeys and StoredSearchKey), written beside its names.
UPDATE leads SET search_name = $2, search_company = $3 WHERE id = $1
