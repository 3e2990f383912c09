#include "identity/phone.h"

#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"

// libphonenumber's compiled-in metadata (src/phonenumbers/metadata.h, a header Debian does not
// install; the two functions are exported by libphonenumber.so): the serialized
// PhoneMetadataCollection that PhoneNumberUtil itself parses at start-up.
namespace i18n::phonenumbers {
int metadata_size();
const void* metadata_get();
}  // namespace i18n::phonenumbers

namespace leadflow::identity::internal {
namespace {

using ::i18n::phonenumbers::PhoneMetadata;
using ::i18n::phonenumbers::PhoneMetadataCollection;
using ::i18n::phonenumbers::PhoneNumber;
using ::i18n::phonenumbers::PhoneNumberDesc;
using ::i18n::phonenumbers::PhoneNumberUtil;

// libphonenumber's limits (phonenumberutil.cc): kMinLengthForNsn, kMaxLengthForNsn,
// kMaxLengthCountryCode.
constexpr size_t kMinLengthForNsn = 2;
constexpr size_t kMaxLengthForNsn = 17;
constexpr size_t kMaxLengthCountryCode = 3;
// The region code libphonenumber gives non-geographical entities (+800, +882, ...).
constexpr std::string_view kNonGeoEntity = "001";

// What one thread needs to run the patterns: the national number as UTF-16 and one ICU matcher
// per pattern, built on first use. libphonenumber builds a matcher (and converts the input) for
// every single match; reusing them is most of what this file saves. Members are destroyed in
// reverse order: the matchers before the input they last pointed at.
struct ThreadState {
  std::array<char16_t, kMaxLengthForNsn + 1> buffer{};
  icu::UnicodeString input;
  std::vector<std::unique_ptr<icu::RegexMatcher>> matchers;

  // False (and nothing set) when `digits` is longer than any national number.
  bool SetInput(std::string_view digits) {
    if (digits.size() > buffer.size()) {
      return false;
    }
    std::copy(digits.begin(), digits.end(), buffer.begin());
    input.setTo(false, buffer.data(), static_cast<int32_t>(digits.size()));
    return true;
  }
};

ThreadState& State() {
  thread_local ThreadState state;
  return state;
}

// One of the metadata's regular expressions, compiled as libphonenumber's ICU adapter compiles
// it (RegexPattern::compile of the UTF-8 pattern, flags 0), on first use. As in that adapter, a
// pattern ICU refuses to compile never matches.
class Regex {
 public:
  Regex(std::string source, size_t index) : source_(std::move(source)), index_(index) {}

  // The whole input matches (RegexMatcher::matches, libphonenumber's FullMatch).
  bool FullMatch(ThreadState& state) const {
    icu::RegexMatcher* matcher = Matcher(state);
    if (matcher == nullptr) {
      return false;
    }
    UErrorCode status = U_ZERO_ERROR;
    matcher->reset(state.input);
    bool matched = matcher->matches(0, status);
    return matched && U_SUCCESS(status);
  }

  // A prefix of the input matches (RegexMatcher::lookingAt, libphonenumber's Consume).
  bool LookingAt(ThreadState& state) const {
    icu::RegexMatcher* matcher = Matcher(state);
    if (matcher == nullptr) {
      return false;
    }
    UErrorCode status = U_ZERO_ERROR;
    matcher->reset(state.input);
    bool matched = matcher->lookingAt(0, status);
    return matched && U_SUCCESS(status);
  }

 private:
  const icu::RegexPattern* Pattern() const {
    std::call_once(compiled_, [this] {
      UParseError parse_error;
      UErrorCode status = U_ZERO_ERROR;
      pattern_.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(source_), 0,
                                                parse_error, status));
      if (U_FAILURE(status)) {
        pattern_.reset();
      }
    });
    return pattern_.get();
  }

  icu::RegexMatcher* Matcher(ThreadState& state) const {
    const icu::RegexPattern* pattern = Pattern();
    if (pattern == nullptr) {
      return nullptr;
    }
    if (state.matchers.size() <= index_) {
      state.matchers.resize(index_ + 1);
    }
    std::unique_ptr<icu::RegexMatcher>& matcher = state.matchers[index_];
    if (matcher == nullptr) {
      UErrorCode status = U_ZERO_ERROR;
      matcher.reset(pattern->matcher(status));
      if (U_FAILURE(status)) {
        matcher.reset();
      }
    }
    return matcher.get();
  }

  std::string source_;
  size_t index_;
  mutable std::once_flag compiled_;
  mutable std::unique_ptr<icu::RegexPattern> pattern_;
};

// PhoneNumberUtil::IsNumberMatchingDesc with RegexBasedMatcher::MatchNationalNumber (no prefix
// match): a possible length first, then the pattern; an empty pattern never matches.
struct Desc {
  std::vector<int> possible_lengths;
  const Regex* pattern = nullptr;

  bool Matches(ThreadState& state, int length) const {
    if (!possible_lengths.empty() && std::find(possible_lengths.begin(), possible_lengths.end(),
                                               length) == possible_lengths.end()) {
      return false;
    }
    return pattern != nullptr && pattern->FullMatch(state);
  }
};

// The parts of one region's (or non-geographical entity's) PhoneMetadata that parsing and
// validation read.
struct Territory {
  Desc general;
  Desc fixed_line;
  Desc mobile;
  // premium rate, toll free, shared cost, VoIP, personal number, pager, UAN, voicemail.
  std::array<Desc, 8> other_types;
  bool same_mobile_and_fixed_line_pattern = false;
  const Regex* national_prefix_for_parsing = nullptr;  // null: none
  const Regex* leading_digits = nullptr;               // null: has_leading_digits() false

  // PhoneNumberUtil::GetNumberTypeHelper(...) != UNKNOWN. The helper tries premium rate, toll
  // free, shared cost, VoIP, personal, pager, UAN and voicemail, then fixed line, then mobile
  // (only when its pattern differs from fixed line's), and answers with the first that matches;
  // any match is "not UNKNOWN". The matches have no side effects, so the usual types are tried
  // first here.
  bool HasType(ThreadState& state, int length) const {
    if (!general.Matches(state, length)) {
      return false;
    }
    if (fixed_line.Matches(state, length)) {
      return true;
    }
    if (!same_mobile_and_fixed_line_pattern && mobile.Matches(state, length)) {
      return true;
    }
    return std::any_of(other_types.begin(), other_types.end(),
                       [&](const Desc& desc) { return desc.Matches(state, length); });
  }
};

struct CallingCode {
  bool known = false;   // libphonenumber has a region list for it
  bool usable = false;  // and metadata for every region of the list
  // libphonenumber's region list for the code, in its order (the main country first).
  std::vector<const Territory*> territories;
};

class Table {
 public:
  static const Table& Get() {
    static const Table* const table = new Table();  // never destroyed: threads may outlive exit
    return *table;
  }

  const CallingCode& Code(int country_code) const {
    static const CallingCode kNone;
    return country_code > 0 && country_code < static_cast<int>(codes_.size()) ? codes_[country_code]
                                                                              : kNone;
  }

 private:
  Table() {
    PhoneMetadataCollection collection;
    if (!collection.ParseFromArray(::i18n::phonenumbers::metadata_get(),
                                   ::i18n::phonenumbers::metadata_size())) {
      return;  // no calling code usable: everything goes to libphonenumber
    }
    // As PhoneNumberUtil's constructor files them: "ZZ" skipped, non-geographical entities by
    // calling code, the others by region; the first entry of a key wins (std::map::insert).
    std::map<std::string, const PhoneMetadata*> by_region;
    std::map<int, const PhoneMetadata*> non_geographical;
    for (const PhoneMetadata& metadata : collection.metadata()) {
      if (metadata.id() == "ZZ") {
        continue;
      }
      if (metadata.id() == kNonGeoEntity) {
        non_geographical.emplace(metadata.country_code(), &metadata);
      } else {
        by_region.emplace(metadata.id(), &metadata);
      }
    }
    const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
    for (int code = 1; code < static_cast<int>(codes_.size()); ++code) {
      std::list<std::string> regions;
      util.GetRegionCodesForCountryCallingCode(code, &regions);
      if (regions.empty()) {
        continue;
      }
      CallingCode& entry = codes_[code];
      entry.known = true;
      entry.usable = true;
      for (const std::string& region : regions) {
        const PhoneMetadata* metadata = nullptr;
        if (region == kNonGeoEntity) {
          auto found = non_geographical.find(code);
          metadata = found == non_geographical.end() ? nullptr : found->second;
        } else {
          auto found = by_region.find(region);
          metadata = found == by_region.end() ? nullptr : found->second;
        }
        if (metadata == nullptr) {
          entry.usable = false;
          break;
        }
        entry.territories.push_back(Build(*metadata));
      }
    }
  }

  const Territory* Build(const PhoneMetadata& metadata) {
    Territory& territory = territories_.emplace_back();
    territory.general = MakeDesc(metadata.general_desc());
    territory.fixed_line = MakeDesc(metadata.fixed_line());
    territory.mobile = MakeDesc(metadata.mobile());
    territory.other_types = {MakeDesc(metadata.premium_rate()),
                             MakeDesc(metadata.toll_free()),
                             MakeDesc(metadata.shared_cost()),
                             MakeDesc(metadata.voip()),
                             MakeDesc(metadata.personal_number()),
                             MakeDesc(metadata.pager()),
                             MakeDesc(metadata.uan()),
                             MakeDesc(metadata.voicemail())};
    territory.same_mobile_and_fixed_line_pattern = metadata.same_mobile_and_fixed_line_pattern();
    if (!metadata.national_prefix_for_parsing().empty()) {
      territory.national_prefix_for_parsing = Intern(metadata.national_prefix_for_parsing());
    }
    if (metadata.has_leading_digits()) {
      territory.leading_digits = Intern(metadata.leading_digits());
    }
    return &territory;
  }

  Desc MakeDesc(const PhoneNumberDesc& desc) {
    Desc made;
    made.possible_lengths.assign(desc.possible_length().begin(), desc.possible_length().end());
    if (!desc.national_number_pattern().empty()) {
      made.pattern = Intern(desc.national_number_pattern());
    }
    return made;
  }

  // One Regex (and one matcher per thread) per distinct pattern.
  const Regex* Intern(const std::string& source) {
    auto [it, inserted] = by_source_.try_emplace(source, nullptr);
    if (inserted) {
      it->second = &regexes_.emplace_back(source, regexes_.size());
    }
    return it->second;
  }

  std::deque<Regex> regexes_;
  std::map<std::string, const Regex*> by_source_;
  std::deque<Territory> territories_;
  std::array<CallingCode, 1000> codes_{};
};

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<ParsedPhone> ParseInternational(std::string_view text,
                                              std::string_view default_region) {
  // Parse keeps no metadata for a default region of "001", which changes its national-prefix
  // step for non-geographical numbers: left to libphonenumber.
  if (default_region == kNonGeoEntity) {
    return std::nullopt;
  }
  // '+', then digits and separators, ending with a digit. For such a text libphonenumber's
  // ExtractPossibleNumber keeps all of it (starts with '+', ends with a digit, no '/' or '\'),
  // IsViablePhoneNumber holds once there are 3 digits, there is no extension (every extension
  // pattern needs a letter, '#', '~', ',', ';' or "ext="), and MaybeStripInternationalPrefix-
  // AndNormalize consumes the '+' and keeps the digits.
  if (text.size() < 2 || text.front() != '+' || !IsAsciiDigit(text.back())) {
    return std::nullopt;
  }
  std::string digits;
  digits.reserve(text.size());
  for (char c : text.substr(1)) {
    if (IsAsciiDigit(c)) {
      digits.push_back(c);
    } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      return std::nullopt;
    }
  }
  // At most 2 digits is libphonenumber's TOO_SHORT_AFTER_IDD; a leading 0 is no calling code and
  // sends Parse down its retry path. Both left to it.
  if (digits.size() <= kMinLengthForNsn || digits.front() == '0') {
    return std::nullopt;
  }
  // ExtractCountryCode: the shortest prefix of 1 to 3 digits that is a known calling code.
  const Table& table = Table::Get();
  for (size_t length = 1; length <= kMaxLengthCountryCode; ++length) {
    int code = 0;
    for (size_t i = 0; i < length; ++i) {
      code = code * 10 + (digits[i] - '0');
    }
    const CallingCode& calling_code = table.Code(code);
    if (!calling_code.known) {
      continue;
    }
    if (!calling_code.usable) {
      return std::nullopt;
    }
    std::string_view national(digits);
    national.remove_prefix(length);
    // TOO_SHORT_NSN and TOO_LONG_NSN: left to libphonenumber.
    if (national.size() < kMinLengthForNsn || national.size() > kMaxLengthForNsn) {
      return std::nullopt;
    }
    // ParseHelper then tries to strip a national prefix with the main country's
    // national_prefix_for_parsing. When that pattern does not match at the start of the
    // national number, every Consume of MaybeStripNationalPrefixAndCarrierCode fails and the
    // number is left as it is; when it does, the outcome depends on the transform rule, the
    // general pattern and the possible lengths: left to libphonenumber.
    const Territory& main = *calling_code.territories.front();
    if (main.national_prefix_for_parsing != nullptr) {
      ThreadState& state = State();
      if (!state.SetInput(national) || main.national_prefix_for_parsing->LookingAt(state)) {
        return std::nullopt;
      }
    }
    // SetItalianLeadingZerosForPhoneNumber and the national number as an integer give back
    // exactly these digits in GetNationalSignificantNumber.
    return ParsedPhone{code, std::string(national)};
  }
  return std::nullopt;  // INVALID_COUNTRY_CODE_ERROR: left to libphonenumber
}

std::optional<bool> IsValidNumber(int country_code, std::string_view national_number) {
  const CallingCode& calling_code = Table::Get().Code(country_code);
  if (!calling_code.usable) {
    return std::nullopt;
  }
  ThreadState& state = State();
  if (!state.SetInput(national_number)) {
    return std::nullopt;
  }
  const int length = static_cast<int>(national_number.size());
  // IsValidNumber = IsValidNumberForRegion(GetRegionCodeForNumber). One region: its type
  // helper. Several (GetRegionCodeForNumberFromRegionList): the first whose leading digits match
  // at the start, or, without leading digits, whose type helper answers; then that region's type
  // helper (already known true in the second case). None: not valid.
  const auto& territories = calling_code.territories;
  if (territories.size() == 1) {
    return territories.front()->HasType(state, length);
  }
  for (const Territory* territory : territories) {
    if (territory->leading_digits != nullptr) {
      if (territory->leading_digits->LookingAt(state)) {
        return territory->HasType(state, length);
      }
    } else if (territory->HasType(state, length)) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> NormalizePhoneWithLibphonenumber(std::string_view text,
                                                             std::string_view default_region) {
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  PhoneNumberUtil::ErrorType error =
      util.Parse(std::string(text), std::string(default_region), &number);
  if (error != PhoneNumberUtil::NO_PARSING_ERROR) {
    return absl::InvalidArgumentError("not a phone number");
  }
  if (!util.IsValidNumber(number)) {
    return absl::InvalidArgumentError("not a valid phone number");
  }
  std::string formatted;
  util.Format(number, PhoneNumberUtil::E164, &formatted);
  return formatted;
}

absl::StatusOr<std::string> NormalizeCheckedPhone(std::string_view text,
                                                  std::string_view default_region) {
  if (std::optional<ParsedPhone> parsed = ParseInternational(text, default_region)) {
    // ParseInternational only answers for calling codes IsValidNumber has metadata for.
    if (!IsValidNumber(parsed->country_code, parsed->national_number).value_or(false)) {
      return absl::InvalidArgumentError("not a valid phone number");
    }
    // Format(E164): '+', the calling code, the national significant number.
    return absl::StrCat("+", parsed->country_code, parsed->national_number);
  }
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  PhoneNumberUtil::ErrorType error =
      util.Parse(std::string(text), std::string(default_region), &number);
  if (error != PhoneNumberUtil::NO_PARSING_ERROR) {
    return absl::InvalidArgumentError("not a phone number");
  }
  std::string national_number;
  util.GetNationalSignificantNumber(number, &national_number);
  std::optional<bool> valid = IsValidNumber(number.country_code(), national_number);
  if (!(valid.has_value() ? *valid : util.IsValidNumber(number))) {
    return absl::InvalidArgumentError("not a valid phone number");
  }
  std::string formatted;
  util.Format(number, PhoneNumberUtil::E164, &formatted);
  return formatted;
}

}  // namespace leadflow::identity::internal
