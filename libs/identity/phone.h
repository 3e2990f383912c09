#pragma once

// How NormalizePhone reaches libphonenumber's answer with less work. Internal to libs/identity;
// declared here for identity.cc and for the differential tests that prove the two paths agree.

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace leadflow::identity::internal {

/// A parsed number as libphonenumber's E.164 output spells it: country calling code and national
/// significant number (digits, leading zeros kept).
struct ParsedPhone {
  int country_code = 0;
  std::string national_number;
};

/// What libphonenumber's `Parse` returns for `text` when `text` is '+' followed by ASCII digits
/// and the separators ' ', '-', '.', '(' and ')' (ending with a digit), and its parse cannot be
/// anything else: a known country calling code, a national number of 2 to 17 digits on which the
/// country's national-prefix pattern does not match. nullopt when the text is not of that shape
/// or when any of those conditions fails: the caller then asks libphonenumber itself.
/// `text` is trimmed, at most kMaxPhoneInputLength bytes, valid UTF-8 without control characters.
std::optional<ParsedPhone> ParseInternational(std::string_view text,
                                              std::string_view default_region);

/// libphonenumber's `IsValidNumber` for a number with this country calling code and national
/// significant number, evaluated over libphonenumber's own metadata and its own regular
/// expressions (the same ICU patterns, compiled with the same flags), with each matcher built
/// once per thread and the checks that cannot change the answer skipped. nullopt when the
/// calling code is not in the metadata.
std::optional<bool> IsValidNumber(int country_code, std::string_view national_number);

/// Only libphonenumber, as NormalizePhone was written first: Parse, IsValidNumber, Format(E164).
/// The reference the faster path is tested against. Same preconditions on `text` as above.
absl::StatusOr<std::string> NormalizePhoneWithLibphonenumber(std::string_view text,
                                                             std::string_view default_region);

/// NormalizePhone as it was before phone.cc: the same input checks and the same international
/// reading of digits without '+' (identity.h), with only libphonenumber under them. What
/// NormalizePhone must always equal (defined in identity.cc).
absl::StatusOr<std::string> NormalizePhoneReference(std::string_view raw,
                                                    std::string_view default_region);

/// NormalizePhone after its input checks: ParseInternational, else libphonenumber's Parse; then
/// IsValidNumber above.
absl::StatusOr<std::string> NormalizeCheckedPhone(std::string_view text,
                                                  std::string_view default_region);

}  // namespace leadflow::identity::internal
