#include "crm-core/domain/naming/naming.h"

#include <unicode/translit.h>
#include <unicode/uniset.h>
#include <unicode/unistr.h>
#include <unicode/utypes.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "crm-core/domain/common/text.h"
#include "identity/person_name.h"

namespace leadflow::crm::domain {
namespace {

// Particles that start a family name when they follow the first name.
constexpr std::array<std::string_view, 34> kParticles = {
    "de",  "de la", "du",  "des", "d'",  "d’", "van", "von", "van der", "der",   "den",   "ter",
    "da",  "di",    "do",  "dos", "das", "le", "la",  "del", "della",   "dello", "degli", "ben",
    "bin", "bint",  "ibn", "al",  "el",  "ap", "mac", "zu",  "af",      "av"};

bool IsParticle(std::string_view word) {
  std::string lower = AsciiLower(word);
  for (std::string_view particle : kParticles) {
    if (lower == particle) return true;
  }
  return false;
}

// Splits on ASCII whitespace, U+00A0 / U+202F (no-break spaces, common in pasted names) and
// U+3000 (the ideographic space between a Japanese family and given name).
std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (size_t i = 0; i < text.size();) {
    size_t width = 0;
    if (absl::ascii_isspace(static_cast<unsigned char>(text[i]))) {
      width = 1;
    } else if (text.substr(i, 2) == "\xC2\xA0") {
      width = 2;
    } else if (text.substr(i, 3) == "\xE2\x80\xAF" || text.substr(i, 3) == "\xE3\x80\x80") {
      width = 3;
    }
    if (width > 0) {
      if (!current.empty()) words.push_back(std::move(current));
      current.clear();
      i += width;
    } else {
      current.push_back(text[i]);
      ++i;
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

std::string Join(const std::vector<std::string>& words, size_t from, size_t to) {
  std::vector<std::string> part(words.begin() + static_cast<ptrdiff_t>(from),
                                words.begin() + static_cast<ptrdiff_t>(to));
  return absl::StrJoin(part, " ");
}

constexpr char kFoldRules[] = "NFKD; [:Nonspacing Mark:] Remove; NFC; Latin-ASCII";

std::unique_ptr<icu::Transliterator> MakeTransliterator(const std::string& id) {
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::Transliterator> made(icu::Transliterator::createInstance(
      icu::UnicodeString::fromUTF8(id), UTRANS_FORWARD, status));
  if (U_FAILURE(status)) made.reset();
  return made;
}

// One transliterator per thread: building one parses its rules (slow), and using one is not
// documented as thread-safe.
icu::Transliterator* Folder() {
  thread_local std::unique_ptr<icu::Transliterator> folder = MakeTransliterator(kFoldRules);
  return folder.get();
}

// The German reading's: ä → ae, ö → oe, ü → ue (composed first, so that u + U+0308 is ü), then
// the same folding. ICU's own "de-ASCII" has these rules but ends with Any-ASCII, which reads some
// symbols otherwise than the folding ("½" → " 1/2"): ours keeps the German reading equal to the
// first one but for the umlauts.
icu::Transliterator* GermanFolder() {
  thread_local std::unique_ptr<icu::Transliterator> folder = [] {
    UParseError where;
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::Transliterator> made(icu::Transliterator::createFromRules(
        "leadflow-german-fold",
        icu::UnicodeString::fromUTF8("::NFC; [äÄ] > ae; [öÖ] > oe; [üÜ] > ue; ::NFKD; "
                                     "::[:Nonspacing Mark:] Remove; ::NFC; ::Latin-ASCII;"),
        UTRANS_FORWARD, where, status));
    if (U_FAILURE(status)) made.reset();
    return made;
  }();
  return folder.get();
}

std::string Fold(icu::Transliterator* folder, std::string_view text) {
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (folder != nullptr) folder->transliterate(unicode);
  unicode.foldCase();
  std::string folded;
  unicode.toUTF8String(folded);
  std::vector<std::string> words = Words(folded);
  return Join(words, 0, words.size());
}

// `folded` without kSearchDroppedCharacters, spaces collapsed again.
std::string WithoutDropped(std::string folded) {
  // Frozen once made: a frozen UnicodeSet may be read from several threads at once.
  static const icu::UnicodeSet* const kDropped = [] {
    UErrorCode status = U_ZERO_ERROR;
    auto* set = new icu::UnicodeSet(icu::UnicodeString(kSearchDroppedCharacters), status);
    if (U_FAILURE(status)) {
      delete set;
      return static_cast<icu::UnicodeSet*>(nullptr);
    }
    set->freeze();
    return set;
  }();
  if (kDropped == nullptr) {
    return folded;
  }
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(
      icu::StringPiece(folded.data(), static_cast<int32_t>(folded.size())));
  icu::UnicodeString kept;
  bool dropped = false;
  for (int32_t at = 0; at < unicode.length();) {
    const UChar32 c = unicode.char32At(at);
    if (kDropped->contains(c)) {
      dropped = true;
    } else {
      kept.append(c);
    }
    at += U16_LENGTH(c);
  }
  if (!dropped) {
    return folded;
  }
  std::string out;
  kept.toUTF8String(out);
  std::vector<std::string> words = Words(out);
  return Join(words, 0, words.size());
}

// Whether the German reading may differ: ä, ö, ü, Ä, Ö, Ü precomposed, or U+0308 (a combining
// diaeresis, decomposed input). A byte scan: most names have none, and pay nothing more.
bool HasUmlaut(std::string_view text) {
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const auto next = static_cast<unsigned char>(text[i + 1]);
    if ((lead == 0xC3 && (next == 0xA4 || next == 0xB6 || next == 0xBC || next == 0x84 ||
                          next == 0x96 || next == 0x9C)) ||
        (lead == 0xCC && next == 0x88)) {
      return true;
    }
  }
  return false;
}

std::string GermanKey(std::string_view text) {
  icu::Transliterator* folder = GermanFolder();
  return folder == nullptr ? SearchKey(text) : WithoutDropped(Fold(folder, text));
}

// A word made of single characters each followed by a dot, the last dot optional ("a.b.c.",
// "a.b"): at least three code points, alternately a non-dot and a dot. Migration 0029 writes it
// as the regular expression ^([^.]\.)+[^.]\.?$.
bool IsInitialism(std::string_view word) {
  size_t count = 0;
  for (size_t i = 0; i < word.size(); ++count) {
    const bool dot = word[i] == '.';
    if (dot != (count % 2 == 1)) {
      return false;
    }
    ++i;
    while (i < word.size() && (static_cast<unsigned char>(word[i]) & 0xC0) == 0x80) {
      ++i;  // a UTF-8 continuation byte: the same code point
    }
  }
  return count >= 3;
}

// A reading joined (StoredSearchKey's third rule): initialisms without their dots, then every
// apostrophe removed, spaces collapsed.
std::string Joined(std::string_view reading) {
  std::string out;
  for (size_t start = 0; start <= reading.size();) {
    size_t end = reading.find(' ', start);
    if (end == std::string_view::npos) end = reading.size();
    const std::string_view word = reading.substr(start, end - start);
    if (!out.empty()) out.push_back(' ');
    if (IsInitialism(word)) {
      for (char c : word) {
        if (c != '.') out.push_back(c);
      }
    } else {
      out.append(word);
    }
    start = end + 1;
  }
  out.erase(std::remove(out.begin(), out.end(), '\''), out.end());
  std::vector<std::string> words = Words(out);
  return Join(words, 0, words.size());
}

std::string JoinPair(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return Cat(a, " ", b);
}

// The stored key from its first reading and, if any, its German one (StoredSearchKey's order).
std::string Readings(const std::string& key, const std::optional<std::string>& german) {
  std::vector<std::string> readings = {key};
  if (german.has_value()) readings.push_back(*german);
  const size_t bases = readings.size();
  for (size_t i = 0; i < bases; ++i) readings.push_back(Joined(readings[i]));
  std::vector<std::string> kept;
  for (std::string& reading : readings) {
    if (!reading.empty() && std::find(kept.begin(), kept.end(), reading) == kept.end()) {
      kept.push_back(std::move(reading));
    }
  }
  return absl::StrJoin(kept, std::string(kSearchReadingSeparator));
}

}  // namespace

std::string LastNameOrPlaceholder(std::string_view last, std::string_view placeholder) {
  std::string trimmed = Join(Words(last), 0, Words(last).size());
  if (!trimmed.empty()) return trimmed;
  std::string fallback = Join(Words(placeholder), 0, Words(placeholder).size());
  return fallback.empty() ? std::string(kDefaultLastNamePlaceholder) : fallback;
}

PersonName SplitName(std::string_view full_name, std::string_view placeholder) {
  PersonName name;
  if (std::optional<identity::NameParts> parts = identity::SplitFamilyNameFirst(full_name)) {
    name.first = std::move(parts->given);
    name.last = std::move(parts->family);
    return name;
  }
  std::vector<std::string> words = Words(full_name);
  if (words.size() <= 1) {
    name.first = words.empty() ? "" : words[0];
    name.last = LastNameOrPlaceholder("", placeholder);
    name.last_is_placeholder = true;
    return name;
  }
  size_t family_start = words.size() - 1;
  for (size_t i = 1; i + 1 < words.size(); ++i) {
    if (IsParticle(words[i])) {
      family_start = i;
      break;
    }
  }
  name.first = Join(words, 0, family_start);
  name.last = Join(words, family_start, words.size());
  return name;
}

PersonName ContactName(std::string_view first, std::string_view last,
                       std::string_view placeholder) {
  std::vector<std::string> last_words = Words(last);
  if (last_words.empty()) return SplitName(first, placeholder);
  std::vector<std::string> first_words = Words(first);
  return PersonName{.first = Join(first_words, 0, first_words.size()),
                    .last = Join(last_words, 0, last_words.size()),
                    .last_is_placeholder = false};
}

std::string ContactDisplayName(std::string_view first, std::string_view last,
                               bool last_is_placeholder, std::string_view reach) {
  std::vector<std::string> first_words = Words(first);
  std::vector<std::string> last_words = Words(last);
  const std::string given = Join(first_words, 0, first_words.size());
  const std::string family = Join(last_words, 0, last_words.size());
  if (!last_is_placeholder) return identity::FullName(given, family);
  if (!given.empty()) return given;
  std::vector<std::string> reach_words = Words(reach);
  if (!reach_words.empty()) return Join(reach_words, 0, reach_words.size());
  return family;
}

std::string FoldForSearch(std::string_view text) { return Fold(Folder(), text); }

std::string SearchKey(std::string_view text) { return WithoutDropped(FoldForSearch(text)); }

std::string StoredSearchKey(std::string_view text) {
  std::string key = SearchKey(text);
  if (!HasUmlaut(text)) {
    return Readings(key, std::nullopt);
  }
  return Readings(key, GermanKey(text));
}

std::vector<std::string> SearchQueryForms(std::string_view prefix) {
  std::vector<std::string> forms;
  auto add = [&forms](std::string form) {
    if (!form.empty() && std::find(forms.begin(), forms.end(), form) == forms.end()) {
      forms.push_back(std::move(form));
    }
  };
  add(SearchKey(prefix));
  if (forms.empty()) {
    return forms;
  }
  if (HasUmlaut(prefix)) add(GermanKey(prefix));
  const size_t folded = forms.size();
  for (size_t i = 0; i < folded; ++i) {
    if (forms[i].find('-') != std::string::npos) {
      std::string spaced = forms[i];
      std::replace(spaced.begin(), spaced.end(), '-', ' ');
      std::vector<std::string> words = Words(spaced);
      add(Join(words, 0, words.size()));
    }
  }
  return forms;
}

PersonSearchKeys PersonKeys(std::string_view first, std::string_view last) {
  const std::string f = SearchKey(first);
  const std::string l = SearchKey(last);
  if (!HasUmlaut(first) && !HasUmlaut(last)) {
    return {Readings(JoinPair(f, l), std::nullopt), Readings(JoinPair(l, f), std::nullopt)};
  }
  const std::string german_first = GermanKey(first);
  const std::string german_last = GermanKey(last);
  return {Readings(JoinPair(f, l), JoinPair(german_first, german_last)),
          Readings(JoinPair(l, f), JoinPair(german_last, german_first))};
}

}  // namespace leadflow::crm::domain
