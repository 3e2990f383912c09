#include "telephony-ingest/generic.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "identity/identity.h"

namespace leadflow::telephony {
namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr size_t kMaxTextBytes = 256;
constexpr size_t kMaxUrlBytes = 2048;

bool Printable(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

std::optional<Clock::time_point> ParseTime(std::string_view text) {
  if (text.empty() || text.size() > 64) {
    return std::nullopt;
  }
  if (std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    if (text.size() > 12) {
      return std::nullopt;
    }
    return Clock::time_point(std::chrono::seconds(std::stoll(std::string(text))));
  }
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(text), &time, &error)) {
    return std::nullopt;
  }
  return absl::ToChronoTime(time);
}

GenericParse ParseGenericEvent(std::string_view body, std::string_view region) {
  GenericParse parse;
  nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    parse.outcome = GenericParse::Outcome::kMalformed;
    parse.reason = json.is_discarded() ? "the body is not JSON" : "the body is not a JSON object";
    return parse;
  }
  auto& errors = parse.errors;
  CallUpdate& update = parse.update;
  update.provider = "generic";
  // A string field: absent → empty; present and not a string → an error.
  auto text = [&](const char* name, size_t max_bytes, bool required) -> std::string {
    auto it = json.find(name);
    if (it == json.end() || it->is_null()) {
      if (required) {
        errors[name] = "required";
      }
      return "";
    }
    if (!it->is_string()) {
      errors[name] = "must be a string";
      return "";
    }
    std::string value = it->get<std::string>();
    if (value.size() > max_bytes) {
      errors[name] = "too long (at most " + std::to_string(max_bytes) + " bytes)";
    } else if (!identity::IsValidUtf8(value) || value.find('\0') != std::string::npos) {
      errors[name] = "must be UTF-8 text";
    } else if (required && value.empty()) {
      errors[name] = "required";
    }
    return value;
  };
  auto time = [&](const char* name) -> std::optional<Clock::time_point> {
    auto it = json.find(name);
    if (it == json.end() || it->is_null()) {
      return std::nullopt;
    }
    std::optional<Clock::time_point> parsed;
    if (it->is_number_unsigned()) {
      parsed = Clock::time_point(std::chrono::seconds(it->get<uint64_t>()));
    } else if (it->is_number_float() && it->get<double>() >= 0 && it->get<double>() < 1e11) {
      // Unix seconds with a fraction (1700000000.25): the fraction is dropped.
      parsed = Clock::time_point(std::chrono::seconds(static_cast<int64_t>(it->get<double>())));
    } else if (it->is_string()) {
      parsed = ParseTime(it->get<std::string>());
    }
    if (!parsed) {
      errors[name] = "must be an RFC 3339 time (2026-11-30T09:15:00Z) or Unix seconds";
    }
    return parsed;
  };

  update.provider_call_id = text("call_id", kMaxIdBytes, true);
  if (!update.provider_call_id.empty() && !Printable(update.provider_call_id)) {
    errors["call_id"] = "must be printable ASCII";
  }
  std::string direction = text("direction", 16, true);
  if (direction == "inbound") {
    update.direction = CallEvent::INBOUND;
  } else if (direction == "outbound") {
    update.direction = CallEvent::OUTBOUND;
  } else if (!direction.empty()) {
    errors["direction"] = "must be inbound or outbound";
  }
  std::string state = text("state", 16, true);
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
  update.extension = text("extension", 64, false);
  update.recording_url = text("recording_url", kMaxUrlBytes, false);
  if (!update.recording_url.empty() && update.recording_url.rfind("https://", 0) != 0 &&
      update.recording_url.rfind("http://", 0) != 0) {
    errors["recording_url"] = "must be an http(s) URL";
  }
  update.started_at = time("started_at");
  update.answered_at = time("answered_at");
  update.ended_at = time("ended_at");
  if (auto it = json.find("duration"); it != json.end() && !it->is_null()) {
    uint64_t seconds = 0;
    bool whole = it->is_number_unsigned();
    if (whole) {
      seconds = it->get<uint64_t>();
    } else if (it->is_string()) {
      // "60", as systems that send every value as text do.
      const std::string& text = it->get_ref<const std::string&>();
      whole = !text.empty() && text.size() <= 7 &&
              std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); });
      seconds = whole ? std::stoull(text) : 0;
    }
    if (whole && seconds <= 7 * 24 * 3600) {
      update.duration_seconds = static_cast<int32_t>(seconds);
    } else {
      errors["duration"] = "must be a whole number of seconds, 0 to 604800";
    }
  }
  // A PBX does not retry a 422: a call is never refused for its numbers. The one that
  // identifies the other party becomes the event's identity when it is a phone number;
  // anything else (withheld, an extension, a SIP user, an invalid number) is kept as given and
  // the call is an unidentified one.
  const std::string& counterpart =
      update.direction == CallEvent::OUTBOUND ? update.to : update.from;
  if (auto e164 = CallerPhone(counterpart, region)) {
    update.counterpart_e164 = *e164;  // the event reuses it
  }
  // Nothing an answer report could overturn is certain until the call is answered: an
  // unanswered outcome waits the settle window (docs/telephony-ingest.md).
  update.uncertain = true;
  if (!errors.empty()) {
    parse.outcome = GenericParse::Outcome::kInvalid;
  }
  return parse;
}

}  // namespace leadflow::telephony
