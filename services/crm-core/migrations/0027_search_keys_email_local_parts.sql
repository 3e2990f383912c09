-- Two folds changed in this release, applied to what is stored (the writers fold new values the
-- new way already; this brings the rows written before to the same form, once).
--
-- 1. Search keys (contacts.search_first_last/search_last_first, companies.search_name,
--    leads.search_name/search_company) no longer hold symbols, format characters or enclosing
--    marks: naming's SearchKey drops kSearchDroppedCharacters, [[:So:][:Sk:][:Cf:][:Me:]], from
--    the folded text and collapses the spaces, so that an emoji inside a word ("Pe👨‍👩‍👧ña",
--    stored "pe👨‍👩‍👧na") no longer cuts it and "pena" finds it. A stored key is already folded,
--    and dropping these characters commutes with the folding, so dropping them from the stored
--    key gives what SearchKey writes. PostgreSQL's regular expressions have no Unicode general
--    categories: the set is written out below as ranges, generated from ICU 72 (Unicode 15), the
--    ICU crm-core links on Debian 12. A character a later Unicode adds to these categories is
--    dropped by the C++ side only; such a key is rewritten the next time its record is saved.
--
-- 2. Email identities' local parts beyond ASCII are folded as their domain is (identity's
--    NormalizeEmail: NFKC, root-locale lower-casing, NFKC; "İnci@örnek.example" becomes
--    "i̇nci@örnek.example"). Before, only ASCII letters were lower-cased, so the same person
--    writing their address in another case was a second identity. lower() with the ICU root
--    collation "und-x-icu" is ICU's own u_strToLower, as in C++ (PostgreSQL on Debian is built
--    with ICU; initdb creates the collation). A record that already holds the folded form keeps
--    that row and loses the other, as in 0022.
--
-- Rows are found by a scan of each table (a regular expression has no index): seconds per
-- million rows; only the rows that change are written.

CREATE FUNCTION pg_temp.search_dropped() RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '[' ||
    '\u005E\u0060\u00A6\u00A8-\u00A9\u00AD-\u00B0\u00B4\u00B8\u02C2-\u02C5\u02D2-\u02DF' ||
    '\u02E5-\u02EB\u02ED\u02EF-\u02FF\u0375\u0384-\u0385\u0482\u0488-\u0489\u058D-\u058E' ||
    '\u0600-\u0605\u060E-\u060F\u061C\u06DD-\u06DE\u06E9\u06FD-\u06FE\u070F\u07F6\u0888' ||
    '\u0890-\u0891\u08E2\u09FA\u0B70\u0BF3-\u0BF8\u0BFA\u0C7F\u0D4F\u0D79\u0F01-\u0F03\u0F13' ||
    '\u0F15-\u0F17\u0F1A-\u0F1F\u0F34\u0F36\u0F38\u0FBE-\u0FC5\u0FC7-\u0FCC\u0FCE-\u0FCF' ||
    '\u0FD5-\u0FD8\u109E-\u109F\u1390-\u1399\u166D\u180E\u1940\u19DE-\u19FF\u1ABE\u1B61-\u1B6A' ||
    '\u1B74-\u1B7C\u1FBD\u1FBF-\u1FC1\u1FCD-\u1FCF\u1FDD-\u1FDF\u1FED-\u1FEF\u1FFD-\u1FFE' ||
    '\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u20DD-\u20E0\u20E2-\u20E4' ||
    '\u2100-\u2101\u2103-\u2106\u2108-\u2109\u2114\u2116-\u2117\u211E-\u2123\u2125\u2127\u2129' ||
    '\u212E\u213A-\u213B\u214A\u214C-\u214D\u214F\u218A-\u218B\u2195-\u2199\u219C-\u219F' ||
    '\u21A1-\u21A2\u21A4-\u21A5\u21A7-\u21AD\u21AF-\u21CD\u21D0-\u21D1\u21D3\u21D5-\u21F3' ||
    '\u2300-\u2307\u230C-\u231F\u2322-\u2328\u232B-\u237B\u237D-\u239A\u23B4-\u23DB' ||
    '\u23E2-\u2426\u2440-\u244A\u249C-\u24E9\u2500-\u25B6\u25B8-\u25C0\u25C2-\u25F7' ||
    '\u2600-\u266E\u2670-\u2767\u2794-\u27BF\u2800-\u28FF\u2B00-\u2B2F\u2B45-\u2B46' ||
    '\u2B4D-\u2B73\u2B76-\u2B95\u2B97-\u2BFF\u2CE5-\u2CEA\u2E50-\u2E51\u2E80-\u2E99' ||
    '\u2E9B-\u2EF3\u2F00-\u2FD5\u2FF0-\u2FFB\u3004\u3012-\u3013\u3020\u3036-\u3037\u303E-\u303F' ||
    '\u309B-\u309C\u3190-\u3191\u3196-\u319F\u31C0-\u31E3\u3200-\u321E\u322A-\u3247\u3250' ||
    '\u3260-\u327F\u328A-\u32B0\u32C0-\u33FF\u4DC0-\u4DFF\uA490-\uA4C6\uA670-\uA672' ||
    '\uA700-\uA716\uA720-\uA721\uA789-\uA78A\uA828-\uA82B\uA836-\uA837\uA839\uAA77-\uAA79\uAB5B' ||
    '\uAB6A-\uAB6B\uFBB2-\uFBC2\uFD40-\uFD4F\uFDCF\uFDFD-\uFDFF\uFEFF\uFF3E\uFF40\uFFE3-\uFFE4' ||
    '\uFFE8\uFFED-\uFFEE\uFFF9-\uFFFD\U00010137-\U0001013F\U00010179-\U00010189' ||
    '\U0001018C-\U0001018E\U00010190-\U0001019C\U000101A0\U000101D0-\U000101FC' ||
    '\U00010877-\U00010878\U00010AC8\U000110BD\U000110CD\U0001173F\U00011FD5-\U00011FDC' ||
    '\U00011FE1-\U00011FF1\U00013430-\U0001343F\U00016B3C-\U00016B3F\U00016B45\U0001BC9C' ||
    '\U0001BCA0-\U0001BCA3\U0001CF50-\U0001CFC3\U0001D000-\U0001D0F5\U0001D100-\U0001D126' ||
    '\U0001D129-\U0001D164\U0001D16A-\U0001D16C\U0001D173-\U0001D17A\U0001D183-\U0001D184' ||
    '\U0001D18C-\U0001D1A9\U0001D1AE-\U0001D1EA\U0001D200-\U0001D241\U0001D245' ||
    '\U0001D300-\U0001D356\U0001D800-\U0001D9FF\U0001DA37-\U0001DA3A\U0001DA6D-\U0001DA74' ||
    '\U0001DA76-\U0001DA83\U0001DA85-\U0001DA86\U0001E14F\U0001ECAC\U0001ED2E' ||
    '\U0001F000-\U0001F02B\U0001F030-\U0001F093\U0001F0A0-\U0001F0AE\U0001F0B1-\U0001F0BF' ||
    '\U0001F0C1-\U0001F0CF\U0001F0D1-\U0001F0F5\U0001F10D-\U0001F1AD\U0001F1E6-\U0001F202' ||
    '\U0001F210-\U0001F23B\U0001F240-\U0001F248\U0001F250-\U0001F251\U0001F260-\U0001F265' ||
    '\U0001F300-\U0001F6D7\U0001F6DC-\U0001F6EC\U0001F6F0-\U0001F6FC\U0001F700-\U0001F776' ||
    '\U0001F77B-\U0001F7D9\U0001F7E0-\U0001F7EB\U0001F7F0\U0001F800-\U0001F80B' ||
    '\U0001F810-\U0001F847\U0001F850-\U0001F859\U0001F860-\U0001F887\U0001F890-\U0001F8AD' ||
    '\U0001F8B0-\U0001F8B1\U0001F900-\U0001FA53\U0001FA60-\U0001FA6D\U0001FA70-\U0001FA7C' ||
    '\U0001FA80-\U0001FA88\U0001FA90-\U0001FABD\U0001FABF-\U0001FAC5\U0001FACE-\U0001FADB' ||
    '\U0001FAE0-\U0001FAE8\U0001FAF0-\U0001FAF8\U0001FB00-\U0001FB92\U0001FB94-\U0001FBCA' ||
    '\U000E0001\U000E0020-\U000E007F'
    || ']'
$$;

CREATE FUNCTION pg_temp.search_key(folded text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT btrim(regexp_replace(regexp_replace(folded, pg_temp.search_dropped(), '', 'g'),
                              ' {2,}', ' ', 'g'), ' ')
$$;

UPDATE contacts
   SET search_first_last = pg_temp.search_key(search_first_last),
       search_last_first = pg_temp.search_key(search_last_first)
 WHERE search_first_last ~ pg_temp.search_dropped()
    OR search_last_first ~ pg_temp.search_dropped();

UPDATE companies SET search_name = pg_temp.search_key(search_name)
 WHERE search_name ~ pg_temp.search_dropped();

UPDATE leads
   SET search_name = pg_temp.search_key(search_name),
       search_company = pg_temp.search_key(search_company)
 WHERE search_name ~ pg_temp.search_dropped() OR search_company ~ pg_temp.search_dropped();

-- The address with its local part folded (the domain is in its normal form since 0022).
CREATE FUNCTION pg_temp.folded_email(address text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT normalize(lower(normalize(split_part(address, '@', 1), NFKC) COLLATE "und-x-icu"), NFKC)
         || substr(address, strpos(address, '@'))
$$;

CREATE TEMPORARY TABLE email_local_part_rewrites ON COMMIT DROP AS
SELECT 'lead' AS owner_kind, lead_id AS owner_id, value, pg_temp.folded_email(value) AS folded
  FROM lead_identities WHERE kind = 'EMAIL' AND split_part(value, '@', 1) ~ '[^\u0001-\u007F]'
UNION ALL
SELECT 'contact', contact_id, value, pg_temp.folded_email(value)
  FROM contact_identities WHERE kind = 'EMAIL' AND split_part(value, '@', 1) ~ '[^\u0001-\u007F]'
UNION ALL
SELECT 'company', company_id, value, pg_temp.folded_email(value)
  FROM company_identities WHERE kind = 'EMAIL' AND split_part(value, '@', 1) ~ '[^\u0001-\u007F]';
DELETE FROM email_local_part_rewrites WHERE folded = value;

-- Rows whose record holds the folded form already go; the others are rewritten. Two rows of one
-- record folding to the same address: one is rewritten, the other goes (DISTINCT ON).
DELETE FROM lead_identities i USING email_local_part_rewrites r
 WHERE r.owner_kind = 'lead' AND i.kind = 'EMAIL' AND i.value = r.value AND i.lead_id = r.owner_id
   AND (EXISTS (SELECT 1 FROM lead_identities u
                 WHERE u.kind = 'EMAIL' AND u.value = r.folded AND u.lead_id = r.owner_id)
        OR EXISTS (SELECT 1 FROM email_local_part_rewrites o
                    WHERE o.owner_kind = 'lead' AND o.owner_id = r.owner_id
                      AND o.folded = r.folded AND o.value < r.value));
UPDATE lead_identities i SET value = r.folded FROM email_local_part_rewrites r
 WHERE r.owner_kind = 'lead' AND i.kind = 'EMAIL' AND i.value = r.value AND i.lead_id = r.owner_id;

DELETE FROM contact_identities i USING email_local_part_rewrites r
 WHERE r.owner_kind = 'contact' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.contact_id = r.owner_id
   AND (EXISTS (SELECT 1 FROM contact_identities u
                 WHERE u.kind = 'EMAIL' AND u.value = r.folded AND u.contact_id = r.owner_id)
        OR EXISTS (SELECT 1 FROM email_local_part_rewrites o
                    WHERE o.owner_kind = 'contact' AND o.owner_id = r.owner_id
                      AND o.folded = r.folded AND o.value < r.value));
UPDATE contact_identities i SET value = r.folded FROM email_local_part_rewrites r
 WHERE r.owner_kind = 'contact' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.contact_id = r.owner_id;

DELETE FROM company_identities i USING email_local_part_rewrites r
 WHERE r.owner_kind = 'company' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.company_id = r.owner_id
   AND (EXISTS (SELECT 1 FROM company_identities u
                 WHERE u.kind = 'EMAIL' AND u.value = r.folded AND u.company_id = r.owner_id)
        OR EXISTS (SELECT 1 FROM email_local_part_rewrites o
                    WHERE o.owner_kind = 'company' AND o.owner_id = r.owner_id
                      AND o.folded = r.folded AND o.value < r.value));
UPDATE company_identities i SET value = r.folded FROM email_local_part_rewrites r
 WHERE r.owner_kind = 'company' AND i.kind = 'EMAIL' AND i.value = r.value
   AND i.company_id = r.owner_id;

DROP FUNCTION pg_temp.folded_email(text);
DROP FUNCTION pg_temp.search_key(text);
DROP FUNCTION pg_temp.search_dropped();
