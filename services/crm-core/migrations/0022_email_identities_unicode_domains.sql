-- Email identities whose domain was stored as an A-label (max@xn--bcher-kva.example) are kept in
-- the Unicode form every writer now produces (max@bücher.example; identity::NormalizeEmail, UTS
-- #46). Before it, the API and web forms stored an A-label as given while email-ingest stored the
-- same address decoded, so the same person was two identities: mail from a contact the API had
-- created made a second lead. This rewrites the rows written before, once.
--
-- Only domains whose every xn-- label decodes (RFC 3492) are rewritten; an undecodable one is
-- left as it is, as NormalizeEmail leaves a domain IDNA refuses. A record that already holds the
-- Unicode form keeps that row and loses the A-label duplicate. The rows are found by a scan of
-- each identity table (LIKE '%xn--%' has no index): seconds per million identities.

-- RFC 3492 decoding of one label without its xn-- prefix; NULL when it is not valid Punycode.
CREATE FUNCTION pg_temp.punycode_decode(input text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  base constant int := 36;
  tmin constant int := 1;
  tmax constant int := 26;
  skew constant int := 38;
  damp constant int := 700;
  n bigint := 128;
  i bigint := 0;
  bias bigint := 72;
  output int[] := '{}';
  delimiter int := strpos(reverse(input), '-');
  pos int := 1;
  old_i bigint;
  w bigint;
  k bigint;
  t bigint;
  c int;
  digit int;
  delta bigint;
  points int;
  decoded text;
BEGIN
  IF delimiter > 0 THEN
    delimiter := length(input) - delimiter + 1;  -- the last '-': basic code points before it
    FOR p IN 1 .. delimiter - 1 LOOP
      c := ascii(substr(input, p, 1));
      IF c >= 128 THEN
        RETURN NULL;
      END IF;
      output := output || c;
    END LOOP;
    pos := delimiter + 1;
  END IF;
  WHILE pos <= length(input) LOOP
    old_i := i;
    w := 1;
    k := base;
    LOOP
      IF pos > length(input) THEN
        RETURN NULL;
      END IF;
      c := ascii(substr(input, pos, 1));
      pos := pos + 1;
      digit := CASE WHEN c BETWEEN 48 AND 57 THEN c - 22
                    WHEN c BETWEEN 97 AND 122 THEN c - 97
                    WHEN c BETWEEN 65 AND 90 THEN c - 65
                    ELSE -1 END;
      IF digit < 0 THEN
        RETURN NULL;
      END IF;
      i := i + digit * w;
      IF i > 1114111 * 64 THEN  -- past any code point at any position of a 63-octet label
        RETURN NULL;
      END IF;
      t := CASE WHEN k <= bias THEN tmin WHEN k >= bias + tmax THEN tmax ELSE k - bias END;
      EXIT WHEN digit < t;
      w := w * (base - t);
      k := k + base;
    END LOOP;
    points := coalesce(array_length(output, 1), 0) + 1;
    -- The bias adaptation of RFC 3492 section 6.1.
    delta := CASE WHEN old_i = 0 THEN (i - old_i) / damp ELSE (i - old_i) / 2 END;
    delta := delta + delta / points;
    k := 0;
    WHILE delta > ((base - tmin) * tmax) / 2 LOOP
      delta := delta / (base - tmin);
      k := k + base;
    END LOOP;
    bias := k + ((base - tmin + 1) * delta) / (delta + skew);
    n := n + i / points;
    i := i % points;
    IF n > 1114111 OR n BETWEEN 55296 AND 57343 THEN
      RETURN NULL;
    END IF;
    output := output[1:i] || n::int || output[i + 1:];
    i := i + 1;
  END LOOP;
  -- An A-label decodes to a label with a letter outside ASCII, already mapped (lower case, NFKC):
  -- anything else is not one IDNA would have made, and NormalizeEmail keeps it as written.
  IF NOT EXISTS (SELECT 1 FROM unnest(output) AS point(code) WHERE code >= 128) THEN
    RETURN NULL;
  END IF;
  decoded := (SELECT string_agg(chr(code), '' ORDER BY ordinality)
              FROM unnest(output) WITH ORDINALITY AS point(code, ordinality));
  IF decoded <> normalize(decoded, NFKC) OR decoded <> lower(decoded) THEN
    RETURN NULL;
  END IF;
  RETURN decoded;
END
$$;

-- The address with each xn-- label of its domain decoded; NULL when one does not decode.
CREATE FUNCTION pg_temp.unicode_email(address text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN bool_and(decoded IS NOT NULL)
              THEN split_part(address, '@', 1) || '@' || string_agg(decoded, '.' ORDER BY ordinality)
         END
  FROM (SELECT ordinality,
               CASE WHEN label LIKE 'xn--%' THEN pg_temp.punycode_decode(substr(label, 5))
                    ELSE label END AS decoded
          FROM unnest(string_to_array(split_part(address, '@', 2), '.'))
               WITH ORDINALITY AS l(label, ordinality)) AS labels
$$;

CREATE TEMPORARY TABLE email_identity_rewrites ON COMMIT DROP AS
SELECT 'lead' AS owner_kind, lead_id AS owner_id, value, pg_temp.unicode_email(value) AS unicode
  FROM lead_identities WHERE kind = 'EMAIL' AND value LIKE '%@%xn--%'
UNION ALL
SELECT 'contact', contact_id, value, pg_temp.unicode_email(value)
  FROM contact_identities WHERE kind = 'EMAIL' AND value LIKE '%@%xn--%'
UNION ALL
SELECT 'company', company_id, value, pg_temp.unicode_email(value)
  FROM company_identities WHERE kind = 'EMAIL' AND value LIKE '%@%xn--%';
DELETE FROM email_identity_rewrites WHERE unicode IS NULL OR unicode = value;

-- A-label rows whose record holds the Unicode form already go; the others are rewritten.
DELETE FROM lead_identities i USING email_identity_rewrites r
 WHERE r.owner_kind = 'lead' AND i.kind = 'EMAIL' AND i.value = r.value AND i.lead_id = r.owner_id
   AND EXISTS (SELECT 1 FROM lead_identities u
                WHERE u.kind = 'EMAIL' AND u.value = r.unicode AND u.lead_id = r.owner_id);
UPDATE lead_identities i SET value = r.unicode FROM email_identity_rewrites r
 WHERE r.owner_kind = 'lead' AND i.kind = 'EMAIL' AND i.value = r.value AND i.lead_id = r.owner_id;

DELETE FROM contact_identities i USING email_identity_rewrites r
 WHERE r.owner_kind = 'contact' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.contact_id = r.owner_id
   AND EXISTS (SELECT 1 FROM contact_identities u
                WHERE u.kind = 'EMAIL' AND u.value = r.unicode AND u.contact_id = r.owner_id);
UPDATE contact_identities i SET value = r.unicode FROM email_identity_rewrites r
 WHERE r.owner_kind = 'contact' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.contact_id = r.owner_id;

DELETE FROM company_identities i USING email_identity_rewrites r
 WHERE r.owner_kind = 'company' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.company_id = r.owner_id
   AND EXISTS (SELECT 1 FROM company_identities u
                WHERE u.kind = 'EMAIL' AND u.value = r.unicode AND u.company_id = r.owner_id);
UPDATE company_identities i SET value = r.unicode FROM email_identity_rewrites r
 WHERE r.owner_kind = 'company' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.company_id = r.owner_id;

DROP FUNCTION pg_temp.unicode_email(text);
DROP FUNCTION pg_temp.punycode_decode(text);
