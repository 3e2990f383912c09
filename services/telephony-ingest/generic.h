#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// The bounds every input (the generic API, Twilio) holds a call's fields to: past them a field
/// is dropped and named (telephony_fields_dropped_total), the call kept.
inline constexpr size_t kMaxTextBytes = 256;  // from, to, line, operator
inline constexpr size_t kMaxExtensionBytes = 64;
inline constexpr size_t kMaxUrlBytes = 2048;  // recording URLs
inline constexpr int32_t kMaxDurationSeconds = 7 * 24 * 3600;

/// Why `value` cannot be kept as a text field of at most `max_bytes` ("too long (at most N
/// bytes)", "must be UTF-8 text", "… without NUL characters"); std::nullopt when it can.
std::optional<std::string> TextProblem(std::string_view value, size_t max_bytes);
/// Why `url` cannot be kept as a recording URL (TextProblem with kMaxUrlBytes, or not an
/// http(s) URL); std::nullopt when it can.
std::optional<std::string> UrlProblem(std::string_view url);
/// The answer for a talk time that is no whole number of seconds from 0 to kMaxDurationSeconds.
inline constexpr char kDurationProblem[] =
    "not seconds (42, 10.5, \"12s\", \"00:01:05\"), 0 to 604800";

/// How far ahead of our clock a PBX's local time may be and still be taken as the later of the
/// two instants it names in the hour repeated when clocks go back (LocalTimes).
inline constexpr std::chrono::minutes kLocalTimeSkew{5};

/// How times written without a zone offset are read: as the wall clock of the PBX, in `zone`
/// (TELEPHONY_PBX_TIME_ZONE, an IANA name; UTC by default). Around a daylight-saving change:
/// - a local time that never happens (the hour skipped when clocks go forward) is read with the
///   offset in force before the change, as a clock not yet put forward shows it: 02:30 on
///   2026-03-29 in Europe/Paris is 01:30Z (03:30 CEST);
/// - a local time that happens twice (the hour repeated when clocks go back) is the later
///   instant, unless that is more than kLocalTimeSkew after `now` (a report does not come
///   before its call), then the earlier one: right whenever the report is sent within the hour
///   after the time it gives (02:30 on 2026-10-25 in Europe/Paris: 01:30Z from 01:25Z on,
///   00:30Z before).
struct LocalTimes {
  absl::TimeZone zone = absl::UTCTimeZone();
  /// When the report arrived.
  Clock::time_point now;
};

/// The instant a local time of `local.zone` names (see LocalTimes).
std::optional<Clock::time_point> ResolveLocalTime(absl::CivilSecond civil, const LocalTimes& local);

/// The last whole second of Unix time the clock holds (its nanoseconds end in April 2262): a
/// provider's time past it is not a time (converting it overflowed).
int64_t LastClockSecond();
/// `time` on the clock, when the clock holds it (its nanoseconds span 1677 to 2262; a call
/// before 1970 is not a time either): a provider's year 1011 or 9999 is no time, where absl's
/// saturated conversion gave the clock's end and the next arithmetic on it overflowed.
std::optional<Clock::time_point> ClockTime(absl::Time time);

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

/// Parses and validates; `local` reads times without a zone. Numbers are kept as given and
/// never refused: the caller's (inbound) or callee's (outbound) becomes the identity when it is
/// a phone number (CallerPhone, when the call's event is built), else the call is unidentified.
GenericParse ParseGenericEvent(std::string_view body, const LocalTimes& local);

/// A time as PBXs write them: RFC 3339 ("2026-11-30T09:15:00Z", "…+01:00", a space for the
/// "T"), ISO 8601 without a zone (the PBX's local time, read with `local`:
/// "2026-11-30T09:15:00", "2026-11-30 09:15:00.250"), or Unix seconds or milliseconds as text
/// ("1764493200", "1764493200.5", "1764493200000": 13 digits and more are milliseconds).
/// Fractions of a second are dropped.
std::optional<Clock::time_point> ParseTime(std::string_view text, const LocalTimes& local);

/// A talk time in seconds as PBXs write it: "42", "10.5" (rounded), "12s", "00:01:05" or
/// "1:05" (h:mm:ss, m:ss); std::nullopt when unreadable or over 604800 (a week).
std::optional<int32_t> ParseDuration(std::string_view text);

}  // namespace leadflow::telephony
