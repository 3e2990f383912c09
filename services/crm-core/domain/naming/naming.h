#pragma once

// Person and company names: splitting a single "name" into first and last name, the last-name
// placeholder, and the folded search keys that make name search prefix- and accent-insensitive.

#include <string>
#include <string_view>
#include <vector>

namespace leadflow::crm::domain {

/// The placeholder stored when a contact's last name is unknown (crm_settings.last_name_placeholder
/// overrides it). A contact needs a last name; a missing one is never a reason to refuse a record.
inline constexpr std::string_view kDefaultLastNamePlaceholder = "Unknown";

struct PersonName {
  std::string first;
  std::string last;
  /// True when `last` is the placeholder, not something the person gave.
  bool last_is_placeholder = false;
};

/// `last` trimmed, or the placeholder when it is blank; an empty `placeholder` means the default.
std::string LastNameOrPlaceholder(std::string_view last, std::string_view placeholder);

/// Splits a full name given as one string, as a person writes it ("first names, then family
/// name"):
///  - "Marie Curie" → Marie / Curie; "Jean Paul Sartre" → "Jean Paul" / Sartre;
///  - the family name starts at the first nobiliary or patronymic particle that is neither the
///    first nor the last word: "Jean-Pierre de la Tour" → Jean-Pierre / "de la Tour",
///    "Ludwig van Beethoven" → Ludwig / "van Beethoven" (particles: de, de la, du, des, d', van,
///    von, van der, der, den, ter, da, di, do, dos, das, le, la, del, della, dello, degli, ben,
///    bin, bint, ibn, al, el, ap, mac, zu, af, av — compared case-insensitively);
///  - one word → that word as first name, last name the placeholder;
///  - blank → empty first name, last name the placeholder;
///  - runs of whitespace (including no-break and ideographic spaces) count as one separator; ends
///    are trimmed;
///  - a name written in Han, Hiragana, Katakana or Hangul is written family name first, and split
///    so (identity::SplitFamilyNameFirst): "山田 太郎" → 太郎 / 山田, "王伟" → 伟 / 王,
///    "欧阳修" → 修 / 欧阳, "남궁민수" → 민수 / 남궁; a Japanese name without a space is the last
///    name whole, with an empty first name ("やまだたろう") — never the placeholder.
PersonName SplitName(std::string_view full_name,
                     std::string_view placeholder = kDefaultLastNamePlaceholder);

/// A contact's name from a record's first-name and last-name fields (a lead, a web form, an
/// inbound attempt). With a last name, both as given (whitespace runs collapsed, ends trimmed).
/// Without one, the first-name field is read as a whole name and split by SplitName: a form's
/// "Jean Dupont" or "Jean-Pierre de la Tour" in the first-name field with an empty last name is
/// Jean / Dupont or Jean-Pierre / "de la Tour"; the placeholder is used only when that field
/// holds one word (or none).
PersonName ContactName(std::string_view first, std::string_view last,
                       std::string_view placeholder = kDefaultLastNamePlaceholder);

/// How a contact is shown where one line names it (SearchService's display_name): "first last",
/// family name first for a Chinese, Japanese or Korean name ("山田 太郎", identity::FullName).
/// When the last name is the placeholder (`last_is_placeholder`), the first name alone — for a
/// contact nobody named, how they reached us ("+33 6 12 34 56 78", "jean@example.org") — and,
/// when that is blank too (contacts made from nameless calls before such contacts were named so),
/// `reach`: how to reach them, written for reading. The placeholder only when nothing else is
/// known. Never empty while the last name is not.
std::string ContactDisplayName(std::string_view first, std::string_view last,
                               bool last_is_placeholder, std::string_view reach);

/// The search form of a text: case-folded, accents and other combining marks removed, Latin
/// letters reduced to ASCII ("Léa" → "lea", "Ærø" → "aero", "Straße" → "strasse", "Łódź" →
/// "lodz"), other scripts kept (folded: "Ёлка" → "елка"), whitespace runs collapsed to one space
/// and ends trimmed. Stored beside names (contacts.search_*, companies.search_name) and applied to
/// the query, so a prefix match on the stored key is accent- and case-insensitive. Invalid UTF-8
/// is replaced (U+FFFD) rather than refused.
std::string FoldForSearch(std::string_view text);

/// What SearchKey drops from a folded text (ICU UnicodeSet syntax): other and modifier symbols
/// (So, Sk: emoji, skin tones, regional indicators, dingbats, ^ and `), format characters (Cf:
/// the zero-width joiner of emoji sequences, soft hyphens, tag characters) and enclosing marks
/// (Me: the keycap U+20E3). Migration 0027 drops the same set from keys stored before, with this
/// set's ranges written out for ICU 72 (Unicode 15): keep both in step.
inline constexpr char16_t kSearchDroppedCharacters[] = u"[[:So:][:Sk:][:Cf:][:Me:]]";

/// The form names are stored and searched in (contacts.search_*, companies.search_name,
/// leads.search_name and search_company, FindByName's prefix): FoldForSearch, then the
/// kSearchDroppedCharacters removed and the spaces collapsed again, so that an emoji inside a word
/// does not cut the word ("Pe«family emoji»ña" → "pena", found by "pena" and "peña") and
/// one between words is no word ("Jean 🎉 Dupont" → "jean dupont"). Configured names (stages,
/// statuses) keep FoldForSearch as their key: "🔥 Hot" and "Hot" stay two stage names.
std::string SearchKey(std::string_view text);

/// Separates the readings of a stored search key (StoredSearchKey). The newline never occurs in
/// a SearchKey (whitespace runs become one space), so a query, folded by SearchKey, never spans two
/// readings; the space after it makes a reading's start a word start for FindByName's
/// `LIKE '% prefix%'`.
inline constexpr std::string_view kSearchReadingSeparator = "\n ";

/// The key stored for a name (contacts.search_*, companies.search_name, leads.search_name and
/// search_company): its readings, joined by kSearchReadingSeparator, each given once, in this
/// order:
///  1. SearchKey(text), always first (the previous release searches it as it is);
///  2. the German reading, when the text holds ä, ö or ü (precomposed, or a vowel and U+0308):
///     SearchKey after an ICU transliteration with de-ASCII's rules, ä → ae, ö → oe, ü → ue
///     ("Müller & Söhne" → "mueller & soehne"), the way German is typed without umlauts; "muller"
///     keeps finding it through the first reading;
///  3. each reading above joined: an initialism's dots removed (a word made of single characters
///     each followed by a dot, the last dot optional: "a.b.c." → "abc") and every apostrophe
///     removed ("l'epi" → "lepi", "o'brien" → "obrien"), spaces collapsed.
/// A name with none of these (most names) stores SearchKey(text) alone. Empty when SearchKey is.
/// Migration 0029 writes the same for rows stored before (docs/domain.md, "Search keys").
std::string StoredSearchKey(std::string_view text);

/// The folded forms a FindByName prefix is looked for by, each matched at a word start of any
/// reading: SearchKey(prefix); its German reading when it holds ä, ö or ü (so "Müller" finds a
/// name stored as "Mueller"); and each of those with its hyphens read as spaces ("electricite-gen"
/// also as "electricite gen", so a hyphen typed where the name has a space still finds it). Empty
/// when SearchKey(prefix) is.
std::vector<std::string> SearchQueryForms(std::string_view prefix);

/// The two search keys of a person: "first last" and "last first", each StoredSearchKey of that
/// order, so that a prefix of either the first or the last name finds them ("lea" and "martin"
/// both find Léa Martin). The first reading of each is SearchKey(first) and SearchKey(last) joined
/// by a space (either alone when the other is empty).
struct PersonSearchKeys {
  std::string first_last;
  std::string last_first;
};
PersonSearchKeys PersonKeys(std::string_view first, std::string_view last);

}  // namespace leadflow::crm::domain
