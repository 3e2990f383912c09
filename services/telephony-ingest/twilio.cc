#include "telephony-ingest/twilio.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "telephony-ingest/generic.h"

namespace leadflow::telephony {
namespace {

using ingest::FindParam;

std::string Param(const ingest::FormParams& params, std::string_view name) {
  return FindParam(params, name).value_or("");
}

// An enumerated parameter (CallStatus, DialCallStatus, Direction, AnsweredBy, RecordingStatus)
// in the one spelling it is compared in. Twilio documents them in lower case; they are read in
// any case, as the generic API reads its direction and state ("Completed", "NO-ANSWER").
std::string Word(const ingest::FormParams& params, std::string_view name) {
  return absl::AsciiStrToLower(Param(params, name));
}

bool ValidExtension(const std::string& extension) {
  return !extension.empty() && extension.size() <= 32 &&
         std::all_of(extension.begin(), extension.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '*' || c == '#' || c == '_' ||
                  c == '.' || c == '-';
         });
}

bool ValidOperator(const std::string& name) {
  return !name.empty() && name.size() <= 256 && std::all_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
}

bool ValidSid(const std::string& sid) {
  return !sid.empty() && sid.size() <= 64 && std::all_of(sid.begin(), sid.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c));
  });
}

// An <Enqueue> action callback (QueueResult, QueueSid, QueueTime): Twilio requests it when the
// caller leaves the queue. Returns the status the call's fold reads, or nullopt for a
// QueueResult Twilio does not document. A caller an agent took ("bridged", or hanging up while
// being bridged) is an answered call, whose talk time the parent's CallDuration gives; a caller
// who left the queue otherwise (hung up, <Leave>, redirected out, the queue full, an error) was
// served by nobody: a missed call, folded as a <Dial> nobody answered, so that a later <Dial>
// of the call's TwiML that an agent answers still makes it answered, and the parent's
// "completed", which says nothing about the queue, cannot.
std::optional<std::string> EnqueueStatus(std::string_view queue_result) {
  const std::string result = absl::AsciiStrToLower(std::string(queue_result));
  if (result == "bridged" || result == "bridging-in-process") {
    return "in-progress";
  }
  if (result == "hangup" || result == "leave" || result == "redirected" || result == "queue-full" ||
      result == "error" || result == "system-error") {
    return "dial:no-answer";
  }
  return std::nullopt;
}

// The user of one of our own endpoints placing a call that Twilio reports "inbound" — it
// came into Twilio — though it is our agent calling out: a Twilio Client (the Voice SDK in a
// browser or an app: "client:alice"; only our account mints its tokens) or a phone registered
// on one of the account's SIP Domains, `sip_domains` ("sip:201@acme.sip.twilio.com", regional
// "acme.sip.ie1.twilio.com") whose user is a name or an extension, not a number. nullopt for
// anything else: a number, a withheld caller, a SIP caller from another host (a customer's SIP
// address, another Twilio account's SIP Domain), a PBX passing a caller's number
// ("sip:+33612345678@acme.sip.twilio.com").
std::optional<std::string> OwnEndpointUser(const std::string& from,
                                           const std::vector<std::string>& sip_domains) {
  std::string text(absl::StripAsciiWhitespace(from));
  std::string lower = absl::AsciiStrToLower(text);
  if (lower.rfind("client:", 0) == 0) {
    std::string identity = text.substr(7);
    return ValidOperator(identity) ? std::optional<std::string>(identity) : std::nullopt;
  }
  size_t scheme = lower.rfind("sip:", 0) == 0 ? 4 : lower.rfind("sips:", 0) == 0 ? 5 : 0;
  size_t at = lower.find('@');
  if (scheme == 0 || at == std::string::npos || at == scheme || IsAnonymousNumber(text)) {
    return std::nullopt;
  }
  std::string host = lower.substr(at + 1, lower.find_first_of(";:>?", at + 1) - at - 1);
  if (std::find(sip_domains.begin(), sip_domains.end(), host) == sip_domains.end()) {
    return std::nullopt;
  }
  std::string user = text.substr(scheme, at - scheme);
  const size_t digits = static_cast<size_t>(
      std::count_if(user.begin(), user.end(), [](char c) { return absl::ascii_isdigit(c); }));
  const bool number = user.front() == '+' || (digits == user.size() && digits >= 8);
  if (number || !ValidOperator(user)) {
    return std::nullopt;
  }
  return user;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseTwilioSipDomains(const std::string& text) {
  constexpr char kAccepted[] =
      "comma-separated SIP Domains of the Twilio account, each <name>.sip.twilio.com or "
      "<name>.sip.<region>.twilio.com (letters, digits, '-'; at most 253 bytes)";
  std::vector<std::string> domains;
  if (absl::StripAsciiWhitespace(text).empty()) {
    return domains;
  }
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::string domain = absl::AsciiStrToLower(absl::StripAsciiWhitespace(item));
    std::vector<std::string> labels = absl::StrSplit(domain, '.');
    const bool label_ok = std::all_of(labels.begin(), labels.end(), [](const std::string& label) {
      return !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
             std::all_of(label.begin(), label.end(),
                         [](char c) { return absl::ascii_isalnum(c) || c == '-'; });
    });
    // name.sip.twilio.com or name.sip.region.twilio.com
    const size_t n = labels.size();
    const bool twilio = (n == 4 || n == 5) && labels[1] == "sip" && labels[n - 2] == "twilio" &&
                        labels[n - 1] == "com";
    if (domain.size() > 253 || !label_ok || !twilio) {
      return absl::InvalidArgumentError(absl::StrCat("'", std::string(item.substr(0, 64)),
                                                     "' is no Twilio SIP Domain: ", kAccepted));
    }
    if (std::find(domains.begin(), domains.end(), domain) == domains.end()) {
      domains.push_back(std::move(domain));
    }
  }
  if (domains.size() > kMaxTwilioSipDomains) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxTwilioSipDomains, " domains: ", kAccepted));
  }
  return domains;
}

std::optional<Clock::time_point> ParseRfc2822(const std::string& text) {
  absl::Time time;
  std::string error;
  if (text.empty() || !absl::ParseTime("%a, %d %b %Y %H:%M:%S %z", text, &time, &error)) {
    return std::nullopt;
  }
  return ClockTime(time);
}

TwilioParse ParseTwilioVoice(const ingest::FormParams& params, std::string_view target,
                             const std::vector<std::string>& sip_domains) {
  TwilioParse parse;
  CallUpdate& update = parse.update;
  update.provider = "twilio";
  update.provider_call_id = Param(params, "CallSid");
  if (!ValidSid(update.provider_call_id)) {
    parse.outcome = TwilioParse::Outcome::kInvalid;
    parse.reason = "CallSid missing or malformed";
    return parse;
  }
  auto invalid = [&parse](std::string reason) {
    parse.outcome = TwilioParse::Outcome::kInvalid;
    parse.reason = std::move(reason);
    return parse;
  };
  const std::string answered_by = Word(params, "AnsweredBy");
  // Answering machine detection: a machine (machine_start, machine_end_beep, …) or a fax
  // reached is a voicemail, on whichever report of the call says so (the "answered" progress
  // callback, the asynchronous AMD callback, the final one); "human" and "unknown" change
  // nothing.
  update.machine = answered_by.rfind("machine", 0) == 0 || answered_by == "fax";
  // The asynchronous AMD callback (asyncAmdStatusCallback): CallSid, AccountSid, AnsweredBy,
  // MachineDetectionDuration, nothing else. AMD runs once the callee answered.
  const bool amd_only = !FindParam(params, "CallStatus") && !answered_by.empty() &&
                        !FindParam(params, "DialCallStatus") && !FindParam(params, "QueueResult");
  std::string direction = Word(params, "Direction");
  // A leg a <Dial> created: reported as its parent's (CallUpdate::child_leg), its own CallSid
  // kept as the leg's. Of an outbound parent (click-to-call) it is the customer's leg; of an
  // inbound one it changes nothing.
  if (direction == "outbound-dial") {
    if (auto parent = FindParam(params, "ParentCallSid")) {
      if (!ValidSid(*parent)) {
        return invalid("ParentCallSid malformed");
      }
      update.child_leg = true;
      update.dial_leg = update.provider_call_id;
      update.provider_call_id = *parent;
    }
  }
  if (direction == "inbound" || direction == "trunking-terminating") {
    update.direction = CallEvent::INBOUND;
  } else if (direction == "outbound-api" || direction == "outbound-dial" ||
             direction == "trunking-originating") {
    // trunking-originating: a PBX calling out through an Elastic SIP Trunk.
    update.direction = CallEvent::OUTBOUND;
  } else if (!amd_only) {
    // Twilio sends Direction on every voice callback: a call whose direction is a guess would
    // make a lead of our own number.
    return invalid(direction.empty() ? "Direction missing"
                                     : "unknown Direction (inbound, outbound-api, outbound-dial, "
                                       "trunking-terminating, trunking-originating)");
  }
  // Our own endpoint calling out (OwnEndpointUser): an outbound call of that user, to the
  // parent's To when it is a number, or to whom its <Dial>'s leg rang (as click-to-call); not
  // an inbound call from a caller nobody can match, which left the customer's call-back open.
  std::optional<std::string> own_user;
  if (update.direction == CallEvent::INBOUND && direction == "inbound") {
    own_user = OwnEndpointUser(Param(params, "From"), sip_domains);
    if (own_user) {
      update.direction = CallEvent::OUTBOUND;
      update.operator_name = *own_user;
      if (ValidExtension(*own_user) && std::all_of(own_user->begin(), own_user->end(),
                                                   [](char c) { return absl::ascii_isdigit(c); })) {
        update.extension = *own_user;  // a desk phone's extension ("sip:201@…")
      }
    }
  }
  if (update.child_leg) {
    update.direction = CallEvent::DIRECTION_UNSPECIFIED;  // the parent's decides
  }
  // Secondary fields past the generic API's bounds are dropped and named, the call kept.
  auto text = [&](std::string_view name, size_t max_bytes) -> std::string {
    std::string value = Param(params, name);
    if (std::optional<std::string> problem = TextProblem(value, max_bytes)) {
      parse.dropped[std::string(name)] = *problem;
      return {};
    }
    return value;
  };
  auto seconds = [&](std::string_view name) -> std::optional<int32_t> {
    auto value = FindParam(params, name);
    if (!value || value->empty()) {
      return std::nullopt;
    }
    int32_t parsed = 0;
    if (!absl::SimpleAtoi(*value, &parsed) || parsed < 0 || parsed > kMaxDurationSeconds) {
      parse.dropped[std::string(name)] = kDurationProblem;
      return std::nullopt;
    }
    return parsed;
  };
  update.from = text("From", kMaxTextBytes);
  update.to = text("To", kMaxTextBytes);
  // An outbound call's line is the number it was placed from; an own endpoint's is none.
  update.line = update.direction != CallEvent::OUTBOUND ? update.to : own_user ? "" : update.from;
  update.recording_url = Param(params, "RecordingUrl");
  if (!update.recording_url.empty()) {
    if (std::optional<std::string> problem = UrlProblem(update.recording_url)) {
      parse.dropped["RecordingUrl"] = *problem;
      update.recording_url.clear();
    }
  }
  if (!update.recording_url.empty()) {
    // The id its recording status callback gives the same file (RecordingSid).
    const std::string sid = Param(params, "RecordingSid");
    parse.recording_sid = ValidSid(sid) ? sid : RecordingSidOfUrl(update.recording_url);
  }
  const std::string timestamp = Param(params, "Timestamp");
  std::optional<Clock::time_point> at = ParseRfc2822(timestamp);
  if (!timestamp.empty() && !at) {
    parse.dropped["Timestamp"] =
        "no RFC 2822 time from 1970 to 2262: the call timed by its callbacks' arrival";
  }
  if (amd_only) {
    update.state = State::kAnswered;
    update.provider_status = absl::StrCat("amd:", answered_by);
    return parse;
  }

  std::string status = Word(params, "CallStatus");
  std::optional<int32_t> duration = seconds("CallDuration");
  // A <Dial> action callback: the dialled party's status is the call's outcome (the parent
  // call itself is "in-progress" — Twilio answered it to run the <Dial>).
  if (auto dial_status = FindParam(params, "DialCallStatus")) {
    status = "dial:" + absl::AsciiStrToLower(*dial_status);
    duration = seconds("DialCallDuration");
    update.dial_result = true;
    update.dial_leg = Param(params, "DialCallSid");
    // The action's own CallStatus is the parent's: "completed" when the caller hung up during
    // the <Dial>, so no other <Dial> follows.
    update.parent_over = Word(params, "CallStatus") == "completed";
    // Who the <Dial> rang: Twilio's action does not say (its To is the parent's), so the
    // TwiML names the agent in the action URL, signed by Twilio with the rest.
    if (size_t question = target.find('?'); question != std::string_view::npos) {
      auto query = ingest::ParseFormParams(target.substr(question + 1));
      if (!query.ok()) {
        parse.outcome = TwilioParse::Outcome::kInvalid;
        parse.reason = "action URL query malformed";
        return parse;
      }
      if (auto name = FindParam(*query, "operator")) {
        if (!ValidOperator(*name)) {
          parse.outcome = TwilioParse::Outcome::kInvalid;
          parse.reason = "operator (action URL) empty, over 256 bytes or with control characters";
          return parse;
        }
        update.operator_name = *name;
      }
      if (auto extension = FindParam(*query, "extension")) {
        if (!ValidExtension(*extension)) {
          parse.outcome = TwilioParse::Outcome::kInvalid;
          parse.reason = "extension (action URL) not 1-32 of A-Z a-z 0-9 * # _ . -";
          return parse;
        }
        update.extension = *extension;
      }
    }
  }
  std::string queue_status;  // the <Enqueue> action's result, as the call's provider status
  if (auto queue_result = FindParam(params, "QueueResult"); queue_result && !update.dial_result) {
    std::optional<std::string> fold_status = EnqueueStatus(*queue_result);
    if (!fold_status) {
      parse.outcome = TwilioParse::Outcome::kInvalid;
      parse.reason = "unknown QueueResult";
      return parse;
    }
    status = *fold_status;
    duration = std::nullopt;  // the action's CallStatus is the parent's, still in progress
    queue_status = absl::StrCat("queue:", absl::AsciiStrToLower(*queue_result));
    std::string queue_sid = Param(params, "QueueSid");
    if (!queue_sid.empty() && !ValidSid(queue_sid)) {
      parse.outcome = TwilioParse::Outcome::kInvalid;
      parse.reason = "QueueSid malformed";
      return parse;
    }
    if (status == "dial:no-answer") {
      update.dial_result = true;
      update.dial_leg = absl::StrCat("queue:", queue_sid);
      // The caller hung up in the queue: the parent is over, no <Dial> follows.
      update.parent_over = Word(params, "CallStatus") == "completed";
    }
  }
  update.provider_status = queue_status.empty() ? status : queue_status;
  bool inbound = update.direction != CallEvent::OUTBOUND;
  auto answered_then_ended = [&] {
    update.state = State::kEnded;
    update.ended_at = at;
    // A <Dial> action without DialCallDuration (a conference) leaves the talk time unknown.
    update.duration_seconds = update.dial_result ? duration : duration.value_or(0);
    update.answered = true;
    if (at) {
      update.answered_at = *at - std::chrono::seconds(update.duration_seconds.value_or(0));
    }
  };
  if (status == "queued" || status == "initiated" || status == "ringing") {
    update.state = State::kRinging;
    update.started_at = at;
  } else if (status == "in-progress" || status == "answered") {
    update.state = State::kAnswered;
    update.answered_at = at;
  } else if (status == "completed" || status == "dial:completed" || status == "dial:answered") {
    if (update.machine) {
      update.state = State::kVoicemail;  // answering machine detection on an outbound call
      update.ended_at = at;
    } else {
      answered_then_ended();
      // Twilio answered an inbound call itself to run its TwiML, and an outbound-api call's
      // TwiML runs once its callee (click-to-call: the agent) answered: if that was a <Dial>,
      // the <Dial> action or its child leg says whether the dialled party answered, and may
      // reach us after this (both ends hanging up at once).
      update.awaits_dial =
          status == "completed" && (direction == "inbound" || direction == "outbound-api");
    }
  } else if (status == "no-answer" || status == "dial:no-answer") {
    update.state = State::kMissed;
    update.ended_at = at;
  } else if (status == "busy" || status == "dial:busy") {
    // Our agent's line busy on a <Dial>: the caller was not served, a missed call.
    update.state = inbound && status == "dial:busy" ? State::kMissed : State::kBusy;
    update.ended_at = at;
  } else if (status == "failed" || status == "dial:failed") {
    update.state = inbound && status == "dial:failed" ? State::kMissed : State::kFailed;
    update.ended_at = at;
  } else if (status == "canceled" || status == "dial:canceled") {
    update.state = State::kCanceled;
    update.ended_at = at;
  } else {
    parse.outcome = TwilioParse::Outcome::kInvalid;
    parse.reason = "unknown CallStatus";
    return parse;
  }
  return parse;
}

std::string RecordingSidOfUrl(std::string_view url) {
  constexpr std::string_view kRecordings = "/Recordings/";
  const size_t at = url.rfind(kRecordings);
  if (at == std::string_view::npos) {
    return "";
  }
  std::string sid(url.substr(at + kRecordings.size()));
  sid = sid.substr(0, sid.find_first_of("/.?#"));
  return sid.size() > 2 && sid.compare(0, 2, "RE") == 0 && ValidSid(sid) ? sid : "";
}

absl::StatusOr<TwilioRecording> ParseTwilioRecording(const ingest::FormParams& params) {
  TwilioRecording recording;
  recording.call_sid = Param(params, "CallSid");
  recording.recording_sid = Param(params, "RecordingSid");
  recording.recording_url = Param(params, "RecordingUrl");
  if (recording.call_sid.empty() && ValidSid(Param(params, "ConferenceSid")) &&
      ValidSid(recording.recording_sid)) {
    recording.conference = true;  // the conference's, not one call's
    return recording;
  }
  if (!ValidSid(recording.call_sid) || !ValidSid(recording.recording_sid)) {
    return absl::InvalidArgumentError("CallSid or RecordingSid missing or malformed");
  }
  std::string status = Word(params, "RecordingStatus");
  recording.completed = status.empty() || status == "completed";
  if (recording.completed && recording.recording_url.rfind("https://", 0) != 0 &&
      recording.recording_url.rfind("http://", 0) != 0) {
    return absl::InvalidArgumentError("RecordingUrl missing or not a URL");
  }
  return recording;
}

}  // namespace leadflow::telephony
