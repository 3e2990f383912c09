#include "crm-core/domain/naming/naming.h"

#include <unicode/translit.h>
#include <unicode/uniset.h>
#include <unicode/unistr.h>
#include <unicode/utypes.h>

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

// One transliterator per thread: building one parses its rules (slow), and using one is not
// documented as thread-safe.
icu::Transliterator* Folder() {
  thread_local std::unique_ptr<icu::Transliterator> folder = [] {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::Transliterator> made(icu::Transliterator::createInstance(
        "NFKD; [:Nonspacing Mark:] Remove; NFC; Latin-ASCII", UTRANS_FORWARD, status));
    if (U_FAILURE(status)) made.reset();
    return made;
  }();
  return folder.get();
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

std::string FoldForSearch(std::string_view text) {
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (icu::Transliterator* folder = Folder()) folder->transliterate(unicode);
  unicode.foldCase();
  std::string folded;
  unicode.toUTF8String(folded);
  std::vector<std::string> words = Words(folded);
  return Join(words, 0, words.size());
}

std::string SearchKey(std::string_view text) {
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
  std::string folded = FoldForSearch(text);
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

PersonSearchKeys PersonKeys(std::string_view first, std::string_view last) {
  std::string f = SearchKey(first);
  std::string l = SearchKey(last);
  auto join = [](const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (b.empty()) return a;
    return Cat(a, " ", b);
  };
  return {join(f, l), join(l, f)};
}

}  // namespace leadflow::crm::domain
