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
  /// kInvalid: field → what is wrong with it.
  std::map<std::string, std::string> errors;
  CallUpdate update;
};

/// Parses and validates; `region` reads national numbers. Numbers are kept as given and never
/// refused: the caller's (inbound) or callee's (outbound) becomes the identity when it is a
/// phone number (CallerPhone), else the call is unidentified.
GenericParse ParseGenericEvent(std::string_view body, std::string_view region);

/// An RFC 3339 time ("2026-11-30T09:15:00Z", "…+01:00") or Unix seconds as text.
std::optional<Clock::time_point> ParseTime(std::string_view text);

}  // namespace leadflow::telephony
