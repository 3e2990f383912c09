-- One conversion per request id at a time, whichever lead it names.
SELECT pg_advisory_xact_lock(hashtextextended('conversion:' || $1, 0))
