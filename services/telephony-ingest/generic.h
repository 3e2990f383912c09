#pragma once

#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// The generic call-event API's body (docs/telephony-ingest.md): one JSON object per state
/// change of a call.
struct GenericParse {
  enum class Outcome { kOk, kMalformed, kInvalid };
  Outcome outcome = Outcome::kOk;
  /// kMalformed: why the body is not a JSON object.
  std::string reason;
  /// kInvalid: field → what is wrong with it (only call_id, direction and state refuse a
  /// report).
  std::map<std::string, std::string> errors;
  /// Secondary fields that could not be read: dropped, the call kept (field → why).
  std::map<std::string, std::string> dropped;
  CallUpdate update;
};

/// Parses and validates; `region` reads national numbers. Numbers are kept as given and never
/// refused: the caller's (inbound) or callee's (outbound) becomes the identity when it is a
/// phone number (CallerPhone), else the call is unidentified.
GenericParse ParseGenericEvent(std::string_view body, std::string_view region);

/// A time as PBXs write them: RFC 3339 ("2026-11-30T09:15:00Z", "…+01:00", a space for the
/// "T"), ISO 8601 without a zone (read as UTC: "2026-11-30T09:15:00", "2026-11-30 09:15:00.250"),
/// or Unix seconds or milliseconds as text ("1764493200", "1764493200.5", "1764493200000": 13
/// digits and more are milliseconds). Fractions of a second are dropped.
std::optional<Clock::time_point> ParseTime(std::string_view text);

/// A talk time in seconds as PBXs write it: "42", "10.5" (rounded), "12s", "00:01:05" or
/// "1:05" (h:mm:ss, m:ss); std::nullopt when unreadable or over 604800 (a week).
std::optional<int32_t> ParseDuration(std::string_view text);

}  // namespace leadflow::telephony
