#include "identity/identity.h"

#include <phonenumbers/phonenumberutil.h>
#include <unicode/bytestream.h>
#include <unicode/idna.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "identity/phone.h"

namespace leadflow::identity {
namespace {

using events::v1::Identity;
using ::i18n::phonenumbers::PhoneNumber;
using ::i18n::phonenumbers::PhoneNumberUtil;

// Debian's abseil is built with its own string_view, so std::string_view is adapted here.
absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

std::string_view Trim(std::string_view text) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(ToAbsl(text));
  return std::string_view(trimmed.data(), trimmed.size());
}

bool HasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

bool IdentityLess(const Identity& a, const Identity& b) {
  if (a.kind() != b.kind()) {
    return a.kind() < b.kind();
  }
  return a.value() < b.value();
}

// A character IDNA2008 (RFC 5892) lets a label hold, in a label already mapped by UTS #46 (so
// no upper case and nothing NFKC changes): letters, digits and marks (LetterDigits: Ll, Lo, Lm,
// Mn, Mc, Nd) and the hyphen, less the exceptions it disallows (U+0640, U+07FA, U+302E, U+302F,
// U+3031–U+3035, U+303B), plus the ones it allows by exception or in context (ß, ς, U+06FD,
// U+06FE, U+0F0B, U+3007; the middle dot, Greek keraia, Hebrew punctuation, katakana middle dot;
// ZWNJ and ZWJ, whose context ICU checks). UTS #46 lets through what IDNA2008 disallows (symbols
// and punctuation such as §, ©, emoji: its "NV8" characters), so an A-label such as
// xn--stanbul-cja ("stanb§ul") decodes without an error there and is refused here.
bool Idna2008Allows(UChar32 c) {
  if (c < 0x80) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-';
  }
  switch (c) {
    case 0x00DF:
    case 0x03C2:
    case 0x06FD:
    case 0x06FE:
    case 0x0F0B:
    case 0x3007:  // PVALID
    case 0x00B7:
    case 0x0375:
    case 0x05F3:
    case 0x05F4:
    case 0x30FB:  // CONTEXTO
    case 0x200C:
    case 0x200D:  // CONTEXTJ
      return true;
    case 0x0640:
    case 0x07FA:
    case 0x302E:
    case 0x302F:
    case 0x3031:
    case 0x3032:
    case 0x3033:
    case 0x3034:
    case 0x3035:
    case 0x303B:  // DISALLOWED by exception
      return false;
    default:
      break;
  }
  switch (u_charType(c)) {
    case U_LOWERCASE_LETTER:
    case U_OTHER_LETTER:
    case U_MODIFIER_LETTER:
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_DECIMAL_DIGIT_NUMBER:
      return true;
    default:
      return false;
  }
}

// A domain in its one normal form. Internationalised domains reach us written both ways — a
// mail reader or GMime shows "bücher.example", an API client may send the A-label
// "xn--bcher-kva.example" — and both must be one identity, so they are read with UTS #46
// (IDNA2008 with its case folding and NFC) and kept in Unicode (what a person reads). A plain
// ASCII domain with no A-label is only lower-cased; a domain UTS #46 refuses stays as it is,
// lower-cased in ASCII, as before. One whose labels hold a character IDNA2008 disallows (however
// written: as an A-label that decodes to it or in Unicode) is no domain anyone can register:
// InvalidArgument.
absl::StatusOr<std::string> NormalizeDomain(std::string_view domain) {
  std::string lower = absl::AsciiStrToLower(ToAbsl(domain));
  const bool ascii = std::all_of(lower.begin(), lower.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii && lower.find("xn--") == std::string::npos) {
    return lower;
  }
  // Immutable once made: ICU's IDNA may be used from several threads at once.
  static const icu::IDNA* const kUts46 = [] {
    UErrorCode error = U_ZERO_ERROR;
    icu::IDNA* idna = icu::IDNA::createUTS46Instance(
        UIDNA_NONTRANSITIONAL_TO_UNICODE | UIDNA_CHECK_CONTEXTJ, error);
    return U_SUCCESS(error) ? idna : nullptr;
  }();
  if (kUts46 == nullptr) {
    return lower;
  }
  std::string unicode;
  icu::StringByteSink<std::string> sink(&unicode);
  icu::IDNAInfo info;
  UErrorCode error = U_ZERO_ERROR;
  kUts46->nameToUnicodeUTF8(icu::StringPiece(lower.data(), static_cast<int32_t>(lower.size())),
                            sink, info, error);
  if (U_FAILURE(error) || info.hasErrors() || unicode.empty()) {
    return lower;
  }
  const icu::UnicodeString points = icu::UnicodeString::fromUTF8(unicode);
  for (int32_t at = 0; at < points.length();) {
    const UChar32 c = points.char32At(at);
    if (c != '.' && !Idna2008Allows(c)) {
      char code[16];
      std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(c));
      return absl::InvalidArgumentError(absl::StrCat(
          "domain holds a character IDNA2008 does not allow in a host name (", code, ")"));
    }
    at += U16_LENGTH(c);
  }
  return unicode;
}

// The local part in its one form. An ASCII local part is lower-cased, as always. Beyond ASCII it
// is folded the way UTS #46 maps a domain label (nontransitional): NFKC, full lower-casing
// (ICU's root locale, so "İ" becomes "i̇" everywhere, not per the server's locale), NFKC again.
// Lower-casing rather than case folding because that is what the domain's mapping keeps: "ß" and
// "ς" stay as written there too (case folding would make them "ss" and "σ"). Why fold at all:
// mail servers treat local parts case-insensitively in practice, as they do ASCII ones, and one
// person writing "İnci@örnek.example" and "inci@…" in another case must be one identity, as the
// domain is. Migration 0027 folds the stored local parts the same way (PostgreSQL's lower() with
// the ICU root collation "und-x-icu" and normalize(NFKC)).
std::string FoldLocalPart(std::string_view local) {
  const bool ascii = std::all_of(local.begin(), local.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    return absl::AsciiStrToLower(ToAbsl(local));
  }
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(error);
  if (U_FAILURE(error)) {
    return std::string(local);
  }
  icu::UnicodeString text = icu::UnicodeString::fromUTF8(
      icu::StringPiece(local.data(), static_cast<int32_t>(local.size())));
  icu::UnicodeString folded = nfkc->normalize(text, error);
  folded.toLower(icu::Locale::getRoot());
  folded = nfkc->normalize(folded, error);
  if (U_FAILURE(error)) {
    return std::string(local);
  }
  std::string out;
  folded.toUTF8String(out);
  return out;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      ++i;
      continue;
    }
    int length = 0;
    uint32_t code_point = 0;
    if ((byte & 0xe0) == 0xc0) {
      length = 2;
      code_point = byte & 0x1f;
    } else if ((byte & 0xf0) == 0xe0) {
      length = 3;
      code_point = byte & 0x0f;
    } else if ((byte & 0xf8) == 0xf0) {
      length = 4;
      code_point = byte & 0x07;
    } else {
      return false;
    }
    if (i + length > n) {
      return false;
    }
    for (int k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) {
        return false;
      }
      code_point = (code_point << 6) | (next & 0x3f);
    }
    static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kMinimum[length] || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string ToValidUtf8(std::string_view text) {
  if (IsValidUtf8(text)) {
    return std::string(text);
  }
  std::string valid;
  icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())))
      .toUTF8String(valid);
  return valid;
}

absl::Status ValidateRegion(std::string_view region) {
  std::set<std::string> regions;
  PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
  if (regions.count(std::string(region)) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", ToAbsl(region), "' is not a region code (two upper-case letters, e.g. FR)"));
  }
  return absl::OkStatus();
}

namespace {

// `text` with each Unicode space separator (category Zs) other than ' ' — the no-break space, the
// en to hair spaces, the narrow no-break space French typography puts between digit groups, the
// ideographic space — made a ' ', and trimmed again: pasted from a document or a web page, a
// number carries them where it was typed with spaces. `text` itself when it is ASCII.
std::string_view WithPlainSpaces(std::string_view text, std::string* storage) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isascii(c); })) {
    return text;
  }
  *storage = absl::StrReplaceAll(ToAbsl(text), {{"\u00A0", " "},
                                                {"\u1680", " "},
                                                {"\u2000", " "},
                                                {"\u2001", " "},
                                                {"\u2002", " "},
                                                {"\u2003", " "},
                                                {"\u2004", " "},
                                                {"\u2005", " "},
                                                {"\u2006", " "},
                                                {"\u2007", " "},
                                                {"\u2008", " "},
                                                {"\u2009", " "},
                                                {"\u200A", " "},
                                                {"\u202F", " "},
                                                {"\u205F", " "},
                                                {"\u3000", " "}});
  return Trim(*storage);
}

// NormalizePhone's checks before any parsing: the text to parse (its Unicode spaces made plain,
// in `storage` when any), or why there is none.
absl::StatusOr<std::string_view> CheckPhoneText(std::string_view raw, std::string* storage) {
  std::string_view text = Trim(raw);
  if (text.empty()) {
    return absl::InvalidArgumentError("empty");
  }
  if (text.size() > kMaxPhoneInputLength) {
    return absl::InvalidArgumentError("too long for a phone number");
  }
  if (!IsValidUtf8(text) || HasControlCharacter(text)) {
    return absl::InvalidArgumentError("not a valid phone number");
  }
  text = WithPlainSpaces(text, storage);
  if (text.empty()) {
    return absl::InvalidArgumentError("empty");
  }
  return text;
}

// Whether a number that is not valid in `region` may be read as international (NormalizePhone):
// ASCII digits with at most the separators ' ', '-' and '.', no '+', at least
// kMinDigitsReadAsInternational digits, and not starting with the region's national (trunk)
// prefix, which marks a national number ("0 7911…" in FR is a French number, wrong or not).
bool MayBeInternationalWithoutPlus(std::string_view text, std::string_view region) {
  std::string digits;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c != ' ' && c != '-' && c != '.') {
      return false;
    }
  }
  if (digits.size() < kMinDigitsReadAsInternational) {
    return false;
  }
  std::string trunk_prefix;
  PhoneNumberUtil::GetInstance()->GetNddPrefixForRegion(std::string(region),
                                                        /*strip_non_digits=*/true, &trunk_prefix);
  return trunk_prefix.empty() || digits.rfind(trunk_prefix, 0) != 0;
}

// The national reading first; when it fails and the text may be an international number
// written without its '+' (SIP trunks and PBXs send caller ids as "447911123456"), the text
// with a '+' in front, if that is a valid number. Else the national reading's error.
template <typename Normalize>
absl::StatusOr<std::string> NationalElseInternational(std::string_view text,
                                                      std::string_view region,
                                                      Normalize normalize) {
  absl::StatusOr<std::string> national = normalize(text, region);
  if (national.ok() || !MayBeInternationalWithoutPlus(text, region)) {
    return national;
  }
  absl::StatusOr<std::string> international = normalize(absl::StrCat("+", ToAbsl(text)), region);
  return international.ok() ? international : national;
}

}  // namespace

absl::StatusOr<std::string> NormalizePhone(std::string_view raw, std::string_view default_region) {
  std::string spaced;
  absl::StatusOr<std::string_view> text = CheckPhoneText(raw, &spaced);
  if (!text.ok()) {
    return text.status();
  }
  // libphonenumber's answer, reached with less of its work (identity/phone.h); proven equal to
  // internal::NormalizePhoneReference by phone_test.cc and the identity fuzz target.
  return NationalElseInternational(*text, default_region, internal::NormalizeCheckedPhone);
}

namespace internal {

absl::StatusOr<std::string> NormalizePhoneReference(std::string_view raw,
                                                    std::string_view default_region) {
  std::string spaced;
  absl::StatusOr<std::string_view> text = CheckPhoneText(raw, &spaced);
  if (!text.ok()) {
    return text.status();
  }
  return NationalElseInternational(*text, default_region, NormalizePhoneWithLibphonenumber);
}

}  // namespace internal

std::string FormatPhoneForReading(std::string_view e164) {
  if (e164.empty() || e164.size() > kMaxPhoneInputLength || e164[0] != '+') {
    return std::string(e164);
  }
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util.Parse(std::string(e164), "ZZ", &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return std::string(e164);
  }
  std::string formatted;
  util.Format(number, PhoneNumberUtil::INTERNATIONAL, &formatted);
  return formatted;
}

absl::StatusOr<std::string> NormalizeEmail(std::string_view raw) {
  std::string_view text = Trim(raw);
  if (text.empty()) {
    return absl::InvalidArgumentError("empty");
  }
  if (text.size() > kMaxEmailLength) {
    return absl::InvalidArgumentError("too long for an email address");
  }
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError("not valid UTF-8");
  }
  if (HasControlCharacter(text) || text.find(' ') != std::string_view::npos) {
    return absl::InvalidArgumentError("contains spaces or control characters");
  }
  size_t at = text.find('@');
  if (at == std::string_view::npos || text.find('@', at + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError("not an email address");
  }
  std::string_view local = text.substr(0, at);
  std::string_view domain = text.substr(at + 1);
  if (local.empty() || local.size() > 64) {
    return absl::InvalidArgumentError("not an email address");
  }
  if (domain.find('.') == std::string_view::npos) {
    return absl::InvalidArgumentError("domain has no dot");
  }
  for (absl::string_view label : absl::StrSplit(ToAbsl(domain), '.')) {
    if (label.empty()) {
      return absl::InvalidArgumentError("domain has an empty label");
    }
  }
  if (std::any_of(domain.begin(), domain.end(), [](char c) {
        return c == ',' || c == ';' || c == '<' || c == '>' || c == '(' || c == ')' || c == '[' ||
               c == ']' || c == '"' || c == '\\';
      })) {
    return absl::InvalidArgumentError("domain has characters a host name cannot have");
  }
  absl::StatusOr<std::string> normalized = NormalizeDomain(domain);
  if (!normalized.ok()) {
    return normalized.status();
  }
  const std::string folded = FoldLocalPart(local);
  // NFKC may make an '@' or a space of a compatibility form (U+FF20, U+3000): refused as if
  // written so, or the address would not read back as itself.
  if (folded.empty() || folded.size() > 64 || folded.find('@') != std::string::npos ||
      folded.find(' ') != std::string::npos || HasControlCharacter(folded)) {
    return absl::InvalidArgumentError("not an email address");
  }
  if (normalized->size() + folded.size() + 1 > kMaxEmailLength) {
    return absl::InvalidArgumentError("too long for an email address");
  }
  return absl::StrCat(folded, "@", *normalized);
}

void Canonicalize(google::protobuf::RepeatedPtrField<Identity>* identities) {
  std::sort(identities->begin(), identities->end(), IdentityLess);
  auto last =
      std::unique(identities->begin(), identities->end(), [](const Identity& a, const Identity& b) {
        return a.kind() == b.kind() && a.value() == b.value();
      });
  identities->DeleteSubrange(static_cast<int>(last - identities->begin()),
                             static_cast<int>(identities->end() - last));
}

std::string PrimaryKey(const google::protobuf::RepeatedPtrField<Identity>& identities) {
  auto first = std::min_element(identities.begin(), identities.end(), IdentityLess);
  return first == identities.end() ? std::string() : first->value();
}

}  // namespace leadflow::identity
