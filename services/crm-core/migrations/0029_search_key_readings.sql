-- leadflow:no-transaction
-- Names' stored search keys gain readings (naming's StoredSearchKey, docs/domain.md "Search
-- keys"): after SearchKey's reading, which stays first and unchanged, come the German reading of
-- a name holding ä, ö or ü (ä → ae, ö → oe, ü → ue: "mueller" finds "Müller") and each reading
-- joined (an initialism's dots and every apostrophe removed: "abc" finds "A.B.C. Conseil",
-- "obrien" "O'Brien"), joined by a newline and a space. The writers store the new form already;
-- this brings the rows stored before to it.
--
-- Only rows that change are written: a key holding an apostrophe or a dot, or a name holding an
-- umlaut (a regular expression each, no index: one pass over each table by primary-key ranges).
-- Batches of 5,000 ids, each committed on its own (one statement outside a transaction: a DO
-- block committing as it goes), so row locks are held for one batch at a time and a retry after a
-- lock timeout starts where the committed batches stop (a key holding the separator is done).
--
-- The joined readings are string operations on the stored key, exactly as the C++ does them. The
-- German reading needs the name folded again, which only ICU does; here it is computed for names
-- made of printable ASCII and Latin-1 letters (À–ÿ but × and ÷), which PostgreSQL folds as ICU
-- does (accents removed by NFD, Æ → ae, Ð → d, Ø → o, Þ → th, ß → ss, lower case, ^ and `
-- dropped), and only where that folding of the name gives the stored key back. Any other name
-- with an umlaut keeps its first and joined readings, and gains its German one when its record is
-- next saved. names_fold_upgrade_integration_test checks every rewrite against the C++.
DO $migration$
DECLARE
  batch constant bigint := 5000;
  low bigint;
  top bigint;
BEGIN
  -- A reading joined: initialisms without their dots, then no apostrophe, spaces collapsed.
  CREATE OR REPLACE FUNCTION pg_temp.search_joined(reading text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT coalesce(btrim(regexp_replace(replace(
             string_agg(CASE WHEN w ~ '^([^.]\.)+[^.]\.?$' THEN replace(w, '.', '') ELSE w END,
                        ' ' ORDER BY n),
             '''', ''), ' {2,}', ' ', 'g')), '')
      FROM regexp_split_to_table(reading, ' ') WITH ORDINALITY AS t(w, n)
  $f$;

  -- SearchKey of a name of printable ASCII and Latin-1 letters; NULL for any other name.
  CREATE OR REPLACE FUNCTION pg_temp.latin_key(name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT CASE WHEN composed ~ '^[\u0020-\u007E\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF]*$' THEN
      btrim(regexp_replace(lower(translate(
        replace(replace(replace(replace(replace(
          regexp_replace(normalize(composed, NFD), '[\u0300-\u036F^`]', '', 'g'),
          'Æ', 'ae'), 'æ', 'ae'), 'Þ', 'th'), 'þ', 'th'), 'ß', 'ss'),
        'ÐðØø', 'ddoo')), ' {2,}', ' ', 'g'), ' ')
    END
    FROM (SELECT normalize(name, NFC) AS composed) AS n
  $f$;

  -- The German transliteration before the folding: ä → ae, ö → oe, ü → ue, on composed text.
  CREATE OR REPLACE FUNCTION pg_temp.german(name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT replace(replace(replace(replace(replace(replace(normalize(name, NFC),
             'ä', 'ae'), 'Ä', 'ae'), 'ö', 'oe'), 'Ö', 'oe'), 'ü', 'ue'), 'Ü', 'ue')
  $f$;

  CREATE OR REPLACE FUNCTION pg_temp.has_umlaut(name text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT name ~ '[äöüÄÖÜ\u0308]'
  $f$;

  -- Two keys joined as PersonKeys joins a first and a last name.
  CREATE OR REPLACE FUNCTION pg_temp.pair(a text, b text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT CASE WHEN a = '' THEN b WHEN b = '' THEN a ELSE a || ' ' || b END
  $f$;

  -- A person's German reading ("first last" order given), NULL when there is none to add or it
  -- cannot be computed here (see above).
  CREATE OR REPLACE FUNCTION pg_temp.german_pair(a text, b text, key text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT CASE WHEN (pg_temp.has_umlaut(a) OR pg_temp.has_umlaut(b))
                 AND pg_temp.pair(pg_temp.latin_key(a), pg_temp.latin_key(b)) = key
      THEN pg_temp.pair(pg_temp.latin_key(pg_temp.german(a)), pg_temp.latin_key(pg_temp.german(b)))
    END
  $f$;

  -- The stored key: the first reading, the German one, each joined; each once, empty ones left
  -- out, joined by naming's kSearchReadingSeparator.
  CREATE OR REPLACE FUNCTION pg_temp.stored_key(key text, german text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $f$
    SELECT coalesce(string_agg(r, E'\n ' ORDER BY first_at), '')
      FROM (SELECT r, min(n) AS first_at
              FROM unnest(ARRAY[key, german, pg_temp.search_joined(key),
                                pg_temp.search_joined(german)]) WITH ORDINALITY AS u(r, n)
             WHERE r IS NOT NULL AND r <> ''
             GROUP BY r) AS readings
  $f$;

  SELECT coalesce(max(id), 0) INTO top FROM companies;
  low := 0;
  WHILE low < top LOOP
    UPDATE companies
       SET search_name = pg_temp.stored_key(search_name, pg_temp.german_pair(name, '', search_name))
     WHERE id > low AND id <= low + batch AND strpos(search_name, E'\n') = 0
       AND (search_name ~ '[''.]' OR pg_temp.has_umlaut(name))
       AND search_name <> pg_temp.stored_key(search_name,
                                             pg_temp.german_pair(name, '', search_name));
    COMMIT;
    low := low + batch;
  END LOOP;

  SELECT coalesce(max(id), 0) INTO top FROM contacts;
  low := 0;
  WHILE low < top LOOP
    UPDATE contacts
       SET search_first_last = pg_temp.stored_key(
             search_first_last, pg_temp.german_pair(first_name, last_name, search_first_last)),
           search_last_first = pg_temp.stored_key(
             search_last_first, pg_temp.german_pair(last_name, first_name, search_last_first))
     WHERE id > low AND id <= low + batch
       AND strpos(search_first_last, E'\n') = 0 AND strpos(search_last_first, E'\n') = 0
       AND (search_first_last ~ '[''.]' OR search_last_first ~ '[''.]'
            OR pg_temp.has_umlaut(first_name) OR pg_temp.has_umlaut(last_name))
       AND (search_first_last, search_last_first) <> (
             pg_temp.stored_key(search_first_last,
                                pg_temp.german_pair(first_name, last_name, search_first_last)),
             pg_temp.stored_key(search_last_first,
                                pg_temp.german_pair(last_name, first_name, search_last_first)));
    COMMIT;
    low := low + batch;
  END LOOP;

  SELECT coalesce(max(id), 0) INTO top FROM leads;
  low := 0;
  WHILE low < top LOOP
    UPDATE leads
       SET search_name = pg_temp.stored_key(
             search_name, pg_temp.german_pair(first_name, last_name, search_name)),
           search_company = pg_temp.stored_key(
             search_company, pg_temp.german_pair(company_name, '', search_company))
     WHERE id > low AND id <= low + batch
       AND strpos(search_name, E'\n') = 0 AND strpos(search_company, E'\n') = 0
       AND (search_name ~ '[''.]' OR search_company ~ '[''.]'
            OR pg_temp.has_umlaut(first_name) OR pg_temp.has_umlaut(last_name)
            OR pg_temp.has_umlaut(company_name))
       AND (search_name, search_company) <> (
             pg_temp.stored_key(search_name,
                                pg_temp.german_pair(first_name, last_name, search_name)),
             pg_temp.stored_key(search_company,
                                pg_temp.german_pair(company_name, '', search_company)));
    COMMIT;
    low := low + batch;
  END LOOP;

  DROP FUNCTION pg_temp.stored_key(text, text);
  DROP FUNCTION pg_temp.german_pair(text, text, text);
  DROP FUNCTION pg_temp.pair(text, text);
  DROP FUNCTION pg_temp.has_umlaut(text);
  DROP FUNCTION pg_temp.german(text);
  DROP FUNCTION pg_temp.latin_key(text);
  DROP FUNCTION pg_temp.search_joined(text);
END
$migration$;
