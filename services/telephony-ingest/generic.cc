#include "telephony-ingest/generic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "identity/identity.h"
#include "telephony-ingest/json_fields.h"

namespace leadflow::telephony {
namespace {

constexpr size_t kMaxIdBytes = 128;

bool Printable(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// Unix seconds, or milliseconds from 1e11 on (1e11 seconds is in the year 5138); a fraction of
// a second dropped. std::nullopt when negative or past what the clock holds (its nanoseconds
// end in April 2262: a later second overflowed it, undefined behaviour, found by the fuzz
// target).
std::optional<Clock::time_point> UnixTime(double value) {
  static const double kLastSecond = static_cast<double>(LastClockSecond());
  if (!(value >= 0)) {
    return std::nullopt;
  }
  if (value >= 1e11) {
    value /= 1000;
  }
  if (value > kLastSecond) {
    return std::nullopt;
  }
  return Clock::time_point(std::chrono::seconds(static_cast<int64_t>(value)));
}

// A duration rounded to whole seconds, 0 to a week.
std::optional<int32_t> WholeSeconds(double seconds) {
  if (!(seconds >= 0) || seconds > kMaxDurationSeconds) {
    return std::nullopt;
  }
  return static_cast<int32_t>(std::lround(seconds));
}

}  // namespace

int64_t LastClockSecond() {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::duration::max()).count() - 1;
}

std::optional<Clock::time_point> ClockTime(absl::Time time) {
  if (time < absl::UnixEpoch() || time > absl::FromUnixSeconds(LastClockSecond())) {
    return std::nullopt;
  }
  return absl::ToChronoTime(time);
}

std::optional<Clock::time_point> ResolveLocalTime(absl::CivilSecond civil,
                                                  const LocalTimes& local) {
  const absl::TimeZone::TimeInfo info = local.zone.At(civil);
  absl::Time time = info.pre;  // UNIQUE: all three agree; SKIPPED: the offset before the change
  if (info.kind == absl::TimeZone::TimeInfo::REPEATED) {
    // pre is the first occurrence (the offset before the change), post the second.
    const bool later_is_past = absl::ToChronoTime(info.post) <= local.now + kLocalTimeSkew;
    time = later_is_past ? info.post : info.pre;
  }
  std::optional<Clock::time_point> on_clock = ClockTime(time);
  if (!on_clock) {
    return std::nullopt;
  }
  return std::chrono::time_point_cast<std::chrono::seconds>(*on_clock);
}

std::optional<Clock::time_point> ParseTime(std::string_view text, const LocalTimes& local) {
  if (text.empty() || text.size() > 64) {
    return std::nullopt;
  }
  if (absl::ascii_isdigit(text.front()) && std::all_of(text.begin(), text.end(), [](char c) {
        return absl::ascii_isdigit(c) || c == '.';
      })) {
    // Unix seconds or milliseconds, maybe with a fraction.
    double value = 0;
    if (std::count(text.begin(), text.end(), '.') > 1 ||
        !absl::SimpleAtod(absl::string_view(text.data(), text.size()), &value)) {
      return std::nullopt;
    }
    return UnixTime(value);
  }
  std::string normalized(text);
  if (normalized.size() > 10 && normalized[10] == ' ') {
    normalized[10] = 'T';  // "2026-11-30 09:15:00", as SQL and many CDRs write it
  }
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, normalized, &time, &error)) {
    std::optional<Clock::time_point> on_clock = ClockTime(time);
    if (!on_clock) {
      return std::nullopt;
    }
    return std::chrono::time_point_cast<std::chrono::seconds>(*on_clock);
  }
  // No offset: the fields are the PBX's wall clock. Read as UTC only to take them apart.
  if (absl::ParseTime("%Y-%m-%d%ET%H:%M:%E*S", normalized, absl::UTCTimeZone(), &time, &error)) {
    return ResolveLocalTime(absl::ToCivilSecond(time, absl::UTCTimeZone()), local);
  }
  return std::nullopt;
}

std::optional<int32_t> ParseDuration(std::string_view text) {
  std::string value(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())));
  if (value.empty() || value.size() > 16) {
    return std::nullopt;
  }
  double seconds = 0;
  if (value.find(':') != std::string::npos) {
    // h:mm:ss or m:ss
    std::vector<std::string> parts = absl::StrSplit(value, ':');
    if (parts.size() > 3) {
      return std::nullopt;
    }
    for (const std::string& part : parts) {
      int64_t number = 0;
      if (part.empty() || part.size() > 6 || !absl::SimpleAtoi(part, &number) || number < 0) {
        return std::nullopt;
      }
      seconds = seconds * 60 + static_cast<double>(number);
    }
  } else {
    if (value.back() == 's' || value.back() == 'S') {
      value.pop_back();  // "12s"
    }
    if (value.empty() || !absl::ascii_isdigit(value.front()) ||
        !absl::SimpleAtod(value, &seconds)) {
      return std::nullopt;
    }
  }
  return WholeSeconds(seconds);
}

std::optional<std::string> TextProblem(std::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return "too long (at most " + std::to_string(max_bytes) + " bytes)";
  }
  if (!identity::IsValidUtf8(value)) {
    return "must be UTF-8 text";
  }
  if (value.find('\0') != std::string_view::npos) {
    return "must be UTF-8 text without NUL characters";  // "\u0000" is valid JSON, not text
  }
  return std::nullopt;
}

std::optional<std::string> UrlProblem(std::string_view url) {
  if (std::optional<std::string> problem = TextProblem(url, kMaxUrlBytes)) {
    return problem;
  }
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    return "must be an http(s) URL";
  }
  return std::nullopt;
}

GenericParse ParseGenericEvent(std::string_view body, const LocalTimes& local) {
  GenericParse parse;
  static constexpr std::string_view kNames[] = {
      "call_id",   "direction",     "state",      "from",        "to",       "line",    "operator",
      "extension", "recording_url", "started_at", "answered_at", "ended_at", "duration"};
  std::array<JsonField, std::size(kNames)> fields;
  bool not_json = false;
  auto read = [&](std::string_view text) {
    return ReadJsonFields(text, kNames, fields) ||
           ReadJsonFieldsReference(text, kNames, fields, &not_json);
  };
  // Bytes that are not UTF-8 (a name in Latin-1, from a PBX configured in ISO-8859-1) make the
  // whole text not JSON to both readers. Read as U+FFFD instead, they cost only the fields that
  // hold them, dropped or refused by name below: a 400 for the whole body would lose the call (a
  // PBX does not retry a 400).
  bool repaired = false;
  if (!read(body)) {
    if (!not_json || identity::IsValidUtf8(body) || !read(identity::ToValidUtf8(body))) {
      parse.outcome = GenericParse::Outcome::kMalformed;
      parse.reason = not_json ? "the body is not JSON" : "the body is not a JSON object";
      return parse;
    }
    repaired = true;
  }
  auto field = [&](std::string_view name) -> const JsonField& {
    // at(): a name missing from kNames is an exception (a 500), never a read past the array.
    return fields.at(std::find(std::begin(kNames), std::end(kNames), name) - std::begin(kNames));
  };
  using Kind = JsonField::Kind;
  auto& errors = parse.errors;
  auto& dropped = parse.dropped;
  CallUpdate& update = parse.update;
  update.provider = "generic";
  // A text field: absent → empty. A required one (call_id, direction, state) that cannot be
  // read refuses the report; any other is dropped and the call kept (a PBX does not retry a
  // 422: the call would be recorded nowhere). A number is taken as its text ("from":
  // 33612345678).
  auto text = [&](const char* name, size_t max_bytes, bool required) -> std::string {
    auto fail = [&](const std::string& why) {
      (required ? errors : dropped)[name] = why;
      return std::string();
    };
    const JsonField& value = field(name);
    if (value.kind == Kind::kAbsent || value.kind == Kind::kNull) {
      return required ? fail("required") : "";
    }
    if (value.kind != Kind::kString && value.kind != Kind::kInteger) {
      return fail("must be a string");
    }
    if (std::optional<std::string> problem = TextProblem(value.text, max_bytes)) {
      return fail(*problem);
    }
    if (repaired && value.text.find("\uFFFD") != std::string::npos) {
      return fail("must be UTF-8 text");  // held bytes that were not
    }
    if (required && value.text.empty()) {
      return fail("required");
    }
    return value.text;
  };
  auto time = [&](const char* name) -> std::optional<Clock::time_point> {
    const JsonField& value = field(name);
    if (value.kind == Kind::kAbsent || value.kind == Kind::kNull ||
        (value.kind == Kind::kString && value.text.empty())) {
      return std::nullopt;
    }
    std::optional<Clock::time_point> parsed;
    if (value.kind == Kind::kInteger || value.kind == Kind::kFloat) {
      parsed = UnixTime(value.number);
    } else if (value.kind == Kind::kString) {
      parsed = ParseTime(value.text, local);
    }
    if (!parsed) {
      dropped[name] =
          "not an RFC 3339 / ISO 8601 time (2026-11-30T09:15:00Z; without a zone: the PBX's "
          "local time, TELEPHONY_PBX_TIME_ZONE) nor Unix seconds or milliseconds";
    }
    return parsed;
  };

  update.provider_call_id = text("call_id", kMaxIdBytes, true);
  if (!update.provider_call_id.empty() && !Printable(update.provider_call_id)) {
    errors["call_id"] = "must be printable ASCII";
  }
  // Enumerated values in any case, with the spaces or line end a PBX's template leaves around
  // them ("missed\n" was refused 422, and the PBX does not retry a 422).
  auto enumerated = [&](const char* name) {
    std::string value = text(name, 16, true);
    absl::StripAsciiWhitespace(&value);
    absl::AsciiStrToLower(&value);
    if (value.empty() && !errors.count(name)) {
      errors[name] = "required";
    }
    return value;
  };
  std::string direction = enumerated("direction");
  if (direction == "inbound" || direction == "in" || direction == "incoming") {
    update.direction = CallEvent::INBOUND;
  } else if (direction == "outbound" || direction == "out" || direction == "outgoing") {
    update.direction = CallEvent::OUTBOUND;
  } else if (!direction.empty()) {
    errors["direction"] = "must be inbound or outbound";
  }
  std::string state = enumerated("state");
  if (auto parsed = ParseState(state)) {
    update.state = *parsed;
  } else if (!state.empty()) {
    errors["state"] =
        "must be one of ringing, answered, ended, missed, voicemail, busy, failed, canceled";
  }
  update.from = text("from", kMaxTextBytes, false);
  update.to = text("to", kMaxTextBytes, false);
  update.line = text("line", kMaxTextBytes, false);
  update.operator_name = text("operator", kMaxTextBytes, false);
  update.extension = text("extension", kMaxExtensionBytes, false);
  update.recording_url = text("recording_url", kMaxUrlBytes, false);
  if (!update.recording_url.empty()) {
    if (std::optional<std::string> problem = UrlProblem(update.recording_url)) {
      dropped["recording_url"] = *problem;
      update.recording_url.clear();
    }
  }
  update.started_at = time("started_at");
  update.answered_at = time("answered_at");
  update.ended_at = time("ended_at");
  // Times that contradict each other (a PBX's clocks, a field mixed up) are dropped like an
  // unreadable one, the call kept: started_at ≤ answered_at ≤ ended_at, started_at the anchor.
  // An answered_at before started_at is dropped but still says the call was answered; an
  // ended_at before the call started or was answered is dropped.
  auto before = [&](const char* name, std::optional<Clock::time_point>& later,
                    const char* earlier_name, const std::optional<Clock::time_point>& earlier) {
    if (later && earlier && *later < *earlier) {
      dropped[name] = std::string("before ") + earlier_name;
      later.reset();
      return true;
    }
    return false;
  };
  if (before("answered_at", update.answered_at, "started_at", update.started_at)) {
    update.answered = true;
  }
  if (!before("ended_at", update.ended_at, "answered_at", update.answered_at)) {
    before("ended_at", update.ended_at, "started_at", update.started_at);
  }
  if (const JsonField& duration = field("duration");
      duration.kind != Kind::kAbsent && duration.kind != Kind::kNull) {
    std::optional<int32_t> seconds;
    if (duration.kind == Kind::kInteger || duration.kind == Kind::kFloat) {
      seconds = WholeSeconds(duration.number);
    } else if (duration.kind == Kind::kString) {
      seconds = ParseDuration(duration.text);
    }
    if (seconds) {
      update.duration_seconds = *seconds;
    } else {
      dropped["duration"] = kDurationProblem;
    }
  }
  // A PBX does not retry a 422: a call is never refused for its numbers. The one that
  // identifies the other party becomes the event's identity when it is a phone number, read
  // once when the call's event is built (BuildEvent), as for every provider: not for each of
  // the call's reports, nor for a provider's retries. Anything else (withheld, an extension, a
  // SIP user, an invalid number) is kept as given and the call is an unidentified one.
  // Nothing an answer report could overturn is certain until the call is answered: an
  // unanswered outcome waits the settle window (docs/telephony-ingest.md).
  update.uncertain = true;
  if (!errors.empty()) {
    parse.outcome = GenericParse::Outcome::kInvalid;
  }
  return parse;
}

}  // namespace leadflow::telephony
