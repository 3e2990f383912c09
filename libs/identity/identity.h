#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace leadflow::identity {

/// Longest input looked at; anything longer is rejected before parsing.
inline constexpr size_t kMaxPhoneInputLength = 64;
inline constexpr size_t kMaxEmailLength = 254;

/// OK when `region` is a two-letter region libphonenumber knows (e.g. "FR", "US");
/// InvalidArgument otherwise. Services check their configured default region at start-up.
absl::Status ValidateRegion(std::string_view region);

/// Fewest digits of a number without '+' that NormalizePhone reads as international when it is
/// not valid in the default region: shorter ones are extensions and local numbers without their
/// area code ("555 0123"), and only a few territories have shorter international numbers.
inline constexpr size_t kMinDigitsReadAsInternational = 8;

/// A phone number in E.164 ("+33612345678"). Numbers written without a country code are read as
/// numbers of `default_region`; a number written in digits only (spaces, '-' and '.' allowed)
/// that is not valid there, has at least kMinDigitsReadAsInternational digits and does not start
/// with the region's national (trunk) prefix is read as international when it is valid with a
/// '+' in front, as SIP trunks and PBXs write caller ids ("447911123456" → "+447911123456",
/// while "612345678" from FR stays "+33612345678"). InvalidArgument, with the reason, when the
/// text is not a phone number, is not a valid number (wrong length, unassigned prefix), or is
/// not UTF-8. Thread-safe.
absl::StatusOr<std::string> NormalizePhone(std::string_view raw, std::string_view default_region);

/// An E.164 number as people write it internationally ("+33612345678" → "+33 6 12 34 56 78"),
/// for titles; anything that does not parse is returned as given. Thread-safe.
std::string FormatPhoneForReading(std::string_view e164);

/// An email address trimmed and folded: the local part lower-cased (beyond ASCII: NFKC, ICU
/// root-locale lower-casing, NFKC — as UTS #46 maps a domain label), the domain by UTS #46 into
/// Unicode ("xn--bcher-kva.example" → "bücher.example"). Deliberately basic otherwise: exactly
/// one '@', a non-empty local part of at most 64 bytes, a domain with a dot and no empty label,
/// no spaces or control characters, valid UTF-8, at most 254 bytes. InvalidArgument with the
/// reason otherwise, also for a domain holding a character IDNA2008 disallows (an A-label
/// decoding to "§", an emoji).
absl::StatusOr<std::string> NormalizeEmail(std::string_view raw);

/// Sorts identities into canonical order (kind, then value: phones before emails before
/// messenger ids) and drops exact duplicates.
void Canonicalize(google::protobuf::RepeatedPtrField<events::v1::Identity>* identities);

/// The Kafka key of an event: the value of the first identity in canonical order (whatever
/// order `identities` are in); empty when there is none.
std::string PrimaryKey(const google::protobuf::RepeatedPtrField<events::v1::Identity>& identities);

/// True when `text` is well-formed UTF-8 (no overlong forms, no surrogates).
bool IsValidUtf8(std::string_view text);
/// `text` with every ill-formed UTF-8 sequence (in the sense of IsValidUtf8) replaced by U+FFFD,
/// ICU's conversion (a maximal subpart per U+FFFD, as the Unicode standard recommends); `text`
/// as it is when it is well-formed. For untrusted text that must be read, not refused, whole.
std::string ToValidUtf8(std::string_view text);

}  // namespace leadflow::identity
