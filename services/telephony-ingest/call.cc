#include "telephony-ingest/call.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <future>
#include <iterator>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "identity/identity.h"
#include "ingest/event_id.h"
#include "telephony-ingest/generic.h"
#include "telephony-ingest/json_fields.h"

namespace leadflow::telephony {
namespace {

std::string Key(std::string_view provider, std::string_view id) {
  std::string key;
  ingest::AppendPart(&key, provider);
  ingest::AppendPart(&key, id);
  return key;
}

bool IsFinal(State state) { return state != State::kRinging && state != State::kAnswered; }

int64_t Seconds(Clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

Clock::time_point FromTimestamp(const google::protobuf::Timestamp& timestamp) {
  return Clock::time_point(std::chrono::seconds(timestamp.seconds()));
}

void SetIfEmpty(std::string* field, const std::string& value) {
  if (field->empty() && !value.empty()) {
    *field = value;
  }
}

void SetIfGiven(std::string* field, const std::string& value) {
  if (!value.empty()) {
    *field = value;
  }
}

// Every recording of a call, each URL once, in arrival order. Bounded by the reports a call
// may hold (TELEPHONY_MAX_UPDATES_PER_CALL): one recording per report at most.
void AddRecording(CallEvent* call, const std::string& url) {
  if (url.empty() || std::find(call->recording_urls().begin(), call->recording_urls().end(), url) !=
                         call->recording_urls().end()) {
    return;
  }
  call->add_recording_urls(url);
}

// The provider of a call as its call id names it ("generic:abc" with provider call id "abc":
// "generic").
std::string ProviderOf(const CallEvent& call) {
  return call.call_id().substr(0, call.call_id().size() - call.provider_call_id().size() - 1);
}

}  // namespace

std::optional<State> ParseState(std::string_view name) {
  static constexpr std::pair<std::string_view, State> kNames[] = {
      {"ringing", State::kRinging}, {"answered", State::kAnswered},   {"ended", State::kEnded},
      {"missed", State::kMissed},   {"voicemail", State::kVoicemail}, {"busy", State::kBusy},
      {"failed", State::kFailed},   {"canceled", State::kCanceled}};
  for (const auto& [spelling, state] : kNames) {
    if (name == spelling) {
      return state;
    }
  }
  return std::nullopt;
}

std::string_view StateName(State state) {
  switch (state) {
    case State::kRinging:
      return "ringing";
    case State::kAnswered:
      return "answered";
    case State::kEnded:
      return "ended";
    case State::kMissed:
      return "missed";
    case State::kVoicemail:
      return "voicemail";
    case State::kBusy:
      return "busy";
    case State::kFailed:
      return "failed";
    case State::kCanceled:
      return "canceled";
  }
  return "unknown";
}

std::string_view OutcomeName(CallEvent::Outcome outcome) {
  switch (outcome) {
    case CallEvent::MISSED:
      return "missed";
    case CallEvent::ANSWERED:
      return "answered";
    case CallEvent::BUSY:
      return "busy";
    case CallEvent::FAILED:
      return "failed";
    case CallEvent::VOICEMAIL:
      return "voicemail";
    case CallEvent::CANCELED:
      return "canceled";
    default:
      return "unspecified";
  }
}

namespace {

// Whether `text` holds `word` (lowercase) in any case.
bool ContainsLowercaseWord(absl::string_view text, absl::string_view word) {
  for (size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (absl::ascii_tolower(text[i]) == word.front() &&
        absl::EqualsIgnoreCase(text.substr(i, word.size()), word)) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool IsAnonymousNumber(std::string_view number) {
  // Read in place, every comparison in any case (no lowercase copy of the number).
  absl::string_view text =
      absl::StripAsciiWhitespace(absl::string_view(number.data(), number.size()));
  // (The first character and the size are compared inline first: a number is none of these.)
  for (absl::string_view scheme : {"sip:", "sips:", "tel:"}) {
    if (!text.empty() && absl::ascii_tolower(text.front()) == scheme.front() &&
        absl::StartsWithIgnoreCase(text, scheme)) {
      text.remove_prefix(scheme.size());
    }
  }
  if (size_t at = text.find('@'); at != absl::string_view::npos) {
    text = text.substr(0, at);
  }
  static constexpr absl::string_view kWithheld[] = {
      "",        "anonymous",   "restricted", "unknown",   "private",     "withheld",
      "blocked", "unavailable", "+266696687", "266696687", "+7378742833", "7378742833"};
  for (absl::string_view withheld : kWithheld) {
    if (text.size() == withheld.size() && absl::EqualsIgnoreCase(text, withheld)) {
      return true;
    }
  }
  // Placeholders switches send for a number they do not pass on: only zeros ("0000000000"),
  // or a country code of at most 3 digits then only zeros ("+33000000000").
  absl::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') {
    digits.remove_prefix(1);
  }
  if (digits.size() >= 4 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    size_t first_zero = digits.find('0');
    if (first_zero != absl::string_view::npos && first_zero <= 3 &&
        digits.size() - first_zero >= 4 &&
        digits.find_first_not_of('0', first_zero) == absl::string_view::npos) {
      return true;
    }
  }
  // A presentation word instead of a number ("CLIP_NO_SCREENING").
  return ContainsLowercaseWord(text, "clip_") || ContainsLowercaseWord(text, "presentation");
}

std::string_view UriUserPart(std::string_view number) {
  absl::string_view text =
      absl::StripAsciiWhitespace(absl::string_view(number.data(), number.size()));
  for (absl::string_view scheme : {"sip:", "sips:", "tel:"}) {
    if (absl::StartsWithIgnoreCase(text, scheme)) {
      text.remove_prefix(scheme.size());
      break;
    }
  }
  // The user part of a SIP URI; a tel: URI's parameters (";ext=…", ";phone-context=…") go.
  text = text.substr(0, text.find_first_of("@;"));
  return std::string_view(text.data(), text.size());
}

namespace {

// The host a caller id names after its '@' ("sip:201@PBX.local;transport=tls" → "pbx.local"),
// lower case; empty for a plain number or a tel: URI.
std::string UriHost(std::string_view number) {
  const size_t at = number.find('@');
  if (at == std::string_view::npos) {
    return "";
  }
  std::string_view host = number.substr(at + 1);
  host = host.substr(0, host.find_first_of(";:>?"));
  return absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(host.data(), host.size())));
}

}  // namespace

std::optional<std::string> CallerPhone(std::string_view number, std::string_view region) {
  if (IsAnonymousNumber(number)) {
    return std::nullopt;
  }
  if (absl::StartsWithIgnoreCase(
          absl::StripAsciiWhitespace(absl::string_view(number.data(), number.size())), "client:")) {
    return std::nullopt;  // a Twilio Client (browser, app) user: one of ours, not a phone
  }
  auto e164 = identity::NormalizePhone(UriUserPart(number), region);
  if (!e164.ok()) {
    return std::nullopt;  // an extension ("3010"), a SIP user name, an invalid number
  }
  return *e164;
}

namespace {

struct Open {
  CallEvent call;
  bool answered = false;
  bool voicemail = false;
  std::optional<State> final_state;
  bool uncertain = false;
  bool awaits_dial = false;
  std::optional<State> dial_state;
  std::optional<int32_t> dial_duration;
  /// Answered <Dial> legs (DialCallSid → talk time): a transfer's legs add up.
  std::map<std::string, int32_t> answered_legs;
  /// The answered legs in the order they were first reported, and who took each one that a
  /// report names (the action URL's operator / extension; the first report naming someone
  /// wins): the last leg so named is credited with the call. A leg is named by whichever of its
  /// reports carries the action URL — a click-to-call leg's own status callback, which names
  /// nobody, often comes before its <Dial> action.
  std::vector<std::string> leg_order;
  std::map<std::string, std::pair<std::string, std::string>> leg_operators;
  /// Twilio's parent "completed" came: no <Dial> follows.
  bool parent_completed = false;
  /// An answered <Dial> leg without its talk time (a <Dial><Conference>: Twilio sends no
  /// DialCallDuration): the parent's CallDuration stands for it.
  bool leg_without_duration = false;
  std::string counterpart_e164;
  /// Whether any report gave a time of its own (a talk time is none). A call none did (a PBX
  /// posting its states as they happen, without times) is timed by its reports' arrival instead.
  bool timed = false;
  /// When the call's first report, its first report of an answer and its first final report
  /// reached the service (CallUpdate::received), for a call no report timed.
  std::optional<Clock::time_point> first_received;
  std::optional<Clock::time_point> answer_received;
  std::optional<Clock::time_point> final_received;
  /// Generic inbound calls reported leg by leg: the extensions `ringing` reports named, and
  /// whether an unanswered end of one of them was left out because another still rings
  /// (RingingLegEnds); then the latest report's arrival, from which the legs are waited for.
  size_t legs_rung = 0;
  bool legs_ringing = false;
  std::optional<Clock::time_point> last_received;
};

// The earlier of `*kept` and `time`, into `*kept`.
void KeepEarliest(std::optional<Clock::time_point>* kept,
                  const std::optional<Clock::time_point>& time) {
  if (time && (!*kept || *time < **kept)) {
    *kept = time;
  }
}

// Whether a report says the call was answered.
bool ReportsAnAnswer(const CallUpdate& update) {
  return update.state == State::kAnswered || update.answered || update.answered_at ||
         (update.state == State::kEnded && update.duration_seconds.value_or(0) > 0);
}

void Fold(Open* open, const CallUpdate& update) {
  CallEvent& call = open->call;
  if (call.call_id().empty()) {
    call.set_call_id(absl::StrCat(update.provider, ":", update.provider_call_id));
    call.set_provider_call_id(update.provider_call_id);
  }
  AddRecording(&call, update.recording_url);
  if (update.started_at || update.answered_at || update.ended_at) {
    open->timed = true;  // a talk time alone is no reading of the PBX's clock
  }
  if (!update.recording) {
    KeepEarliest(&open->first_received, update.received);
    if (ReportsAnAnswer(update)) {
      KeepEarliest(&open->answer_received, update.received);
    }
    if (IsFinal(update.state)) {
      KeepEarliest(&open->final_received, update.received);
    }
  }
  if (update.recording) {
    // A recording that came before the call settled: it rides in the call's event.
    SetIfGiven(call.mutable_recording_url(), update.recording_url);
    return;
  }
  if (call.direction() == CallEvent::DIRECTION_UNSPECIFIED) {
    call.set_direction(update.direction);
  }
  SetIfEmpty(call.mutable_from_number(), update.from);
  SetIfEmpty(call.mutable_to_number(), update.to);
  SetIfEmpty(call.mutable_line(), update.line);
  if (!update.dial_result) {
    // A <Dial> action's operator is its leg's: credited only if that leg was answered (below).
    SetIfGiven(call.mutable_operator_name(), update.operator_name);
    SetIfGiven(call.mutable_extension(), update.extension);
  }
  SetIfGiven(call.mutable_recording_url(), update.recording_url);
  SetIfGiven(call.mutable_transferred_to(), update.transferred_to);
  if (update.started_at &&
      (!call.has_started_at() || Seconds(*update.started_at) < call.started_at().seconds())) {
    *call.mutable_started_at() = ingest::ToTimestamp(*update.started_at);
  }
  if (update.ended_at &&
      (!call.has_ended_at() || Seconds(*update.ended_at) > call.ended_at().seconds())) {
    *call.mutable_ended_at() = ingest::ToTimestamp(*update.ended_at);
  }
  call.set_attempts(call.attempts() + update.attempts);
  if (open->counterpart_e164.empty()) {
    open->counterpart_e164 = update.counterpart_e164;
  }
  std::string_view state = StateName(update.state);
  if (call.states().empty() || call.states(call.states_size() - 1) != state) {
    call.add_states(std::string(state));
  }
  if (update.dial_result) {
    // Twilio's <Dial> action: what the dialled agent did is the call's outcome and talk time.
    // Several <Dial> actions (a transfer: each <Dial> has its own): the call was answered if
    // any leg was, its talk time is the answered legs' together (a retried action counted
    // once), and its status the last action's.
    open->dial_state = update.state;
    open->parent_completed = open->parent_completed || update.parent_over;
    if (update.state == State::kEnded) {
      std::string leg =
          update.dial_leg.empty() ? absl::StrCat("#", open->answered_legs.size()) : update.dial_leg;
      if (open->answered_legs.count(leg) == 0) {
        open->leg_order.push_back(leg);
      }
      open->answered_legs[leg] = update.duration_seconds.value_or(0);
      open->leg_without_duration = open->leg_without_duration || !update.duration_seconds;
      if (!update.operator_name.empty() || !update.extension.empty()) {
        // A retried action of an earlier leg (same DialCallSid) keeps its place in the order:
        // it does not take the credit back.
        open->leg_operators.try_emplace(leg, update.operator_name, update.extension);
      }
      if (update.answered_at && !call.has_answered_at()) {
        *call.mutable_answered_at() = ingest::ToTimestamp(*update.answered_at);
      }
    }
    int32_t talk = 0;
    for (const auto& [leg, seconds] : open->answered_legs) {
      talk += seconds;
    }
    open->dial_duration =
        open->answered_legs.empty() ? update.duration_seconds : std::optional<int32_t>(talk);
    SetIfGiven(call.mutable_provider_status(), update.provider_status);
    return;
  }
  if (!open->dial_state) {
    SetIfGiven(call.mutable_provider_status(), update.provider_status);
  }
  if (update.answered_at && !call.has_answered_at()) {
    *call.mutable_answered_at() = ingest::ToTimestamp(*update.answered_at);
  }
  if (update.duration_seconds) {
    call.set_duration_seconds(*update.duration_seconds);
  }
  if (ReportsAnAnswer(update)) {
    open->answered = true;
  }
  if (update.state == State::kVoicemail || update.machine) {
    open->voicemail = true;
  }
  if (IsFinal(update.state)) {
    open->final_state = update.state;
    open->uncertain = update.uncertain;
    open->awaits_dial = update.awaits_dial;
    // The call's own final status: it is over, whatever its direction; no <Dial> follows.
    open->parent_completed = true;
  }
}

// The outcome a state says on its own.
CallEvent::Outcome OutcomeOf(State state, CallEvent::Direction direction, bool answered) {
  switch (state) {
    case State::kMissed:
      return CallEvent::MISSED;
    case State::kVoicemail:
      return CallEvent::VOICEMAIL;
    case State::kBusy:
      return CallEvent::BUSY;
    case State::kFailed:
      return CallEvent::FAILED;
    case State::kCanceled:
      // A caller who hung up before anybody answered is a missed call for the sales team;
      // only our own outbound call given up is "canceled".
      return direction == CallEvent::OUTBOUND ? CallEvent::CANCELED : CallEvent::MISSED;
    case State::kEnded:
    case State::kAnswered:
    case State::kRinging:
      return answered ? CallEvent::ANSWERED : CallEvent::MISSED;
  }
  return CallEvent::MISSED;
}

FinishedCall Finish(Open&& open, CallEvent::Outcome outcome, bool incomplete,
                    Clock::time_point now) {
  CallEvent& call = open.call;
  call.set_outcome(outcome);
  call.set_incomplete(incomplete);
  const bool timed_by_arrival = !open.timed && open.first_received;
  if (timed_by_arrival) {
    // No report said when anything happened: each happened when it was reported (a PBX
    // posting its states live). The end only when it was reported, and not before the answer
    // (reports posted in parallel may arrive in either order).
    auto whole_seconds = [](Clock::time_point time) {
      return ingest::ToTimestamp(std::chrono::time_point_cast<std::chrono::seconds>(time));
    };
    *call.mutable_started_at() = whole_seconds(*open.first_received);
    const bool answered = outcome == CallEvent::ANSWERED && open.answer_received;
    if (answered) {
      *call.mutable_answered_at() = whole_seconds(*open.answer_received);
    }
    if (!incomplete && open.final_received &&
        (!answered || *open.answer_received <= *open.final_received)) {
      *call.mutable_ended_at() = whole_seconds(*open.final_received);
    }
  }
  if (open.dial_state) {
    const int32_t parent = call.duration_seconds();  // the parent's CallDuration, if it came
    call.set_duration_seconds(open.dial_duration.value_or(0));
    if (call.duration_seconds() == 0 && open.leg_without_duration) {
      call.set_duration_seconds(parent);  // a conference: the caller's time in it
    }
  }
  if (outcome == CallEvent::ANSWERED && !open.leg_operators.empty()) {
    // Twilio: the operator of the last answered <Dial> leg that names one (a transfer's target),
    // as the AMI path credits the last holder; an earlier leg's agent is not carried.
    auto credited =
        std::find_if(open.leg_order.rbegin(), open.leg_order.rend(),
                     [&](const std::string& leg) { return open.leg_operators.count(leg) != 0; });
    const auto& [name, extension] = open.leg_operators.at(*credited);
    call.set_operator_name(name);
    call.set_extension(extension);
    if (open.answered_legs.size() > 1) {
      call.set_transferred_to(extension.empty() ? name : extension);
    }
  }
  if (outcome == CallEvent::ANSWERED) {
    // A talk time and an end: answered that many seconds before it, unless the PBX gave the
    // answer time. A call timed by arrival takes the talk time given over the answer report's
    // arrival ("ended" and its duration, as a PBX posts a call it just hung up; a <Dial>'s
    // DialCallDuration): started no later than that.
    if ((timed_by_arrival || !call.has_answered_at()) && call.has_ended_at() &&
        call.duration_seconds() > 0) {
      call.mutable_answered_at()->set_seconds(call.ended_at().seconds() - call.duration_seconds());
      if (call.has_started_at() && call.started_at().seconds() > call.answered_at().seconds()) {
        call.mutable_started_at()->set_seconds(call.answered_at().seconds());
      }
    }
    if (call.duration_seconds() == 0 && call.has_answered_at() && call.has_ended_at()) {
      call.set_duration_seconds(static_cast<int32_t>(
          std::max<int64_t>(0, call.ended_at().seconds() - call.answered_at().seconds())));
    }
  } else {
    call.set_duration_seconds(0);
    call.clear_answered_at();
  }
  if (!call.has_started_at() && call.has_ended_at()) {
    int64_t back =
        call.has_answered_at() ? call.answered_at().seconds() : call.ended_at().seconds();
    call.mutable_started_at()->set_seconds(back);
  }
  call.set_attempts(std::max(1, call.attempts()));
  call.set_anonymous(IsAnonymousNumber(
      call.direction() == CallEvent::OUTBOUND ? call.to_number() : call.from_number()));

  FinishedCall finished;
  finished.event_id = CallEventId(ProviderOf(call), call.provider_call_id());
  finished.occurred = call.has_ended_at() ? FromTimestamp(call.ended_at()) : now;
  finished.counterpart_e164 = std::move(open.counterpart_e164);
  finished.call = std::move(call);
  return finished;
}

// A child leg of an outbound parent (Twilio click-to-call) as the <Dial> result it is: its
// final status is the <Dial>'s outcome, its talk time the call's; std::nullopt while it has no
// final status (only its callee counts then).
std::optional<CallUpdate> ChildLegAsDial(const CallUpdate& leg) {
  if (!IsFinal(leg.state)) {
    return std::nullopt;
  }
  CallUpdate dial = leg;
  dial.child_leg = false;
  dial.dial_result = true;
  dial.parent_over = false;
  dial.from.clear();
  dial.to.clear();
  dial.line.clear();
  return dial;
}

// Where a generic report of an inbound call rang: the extension it names, else its `to`, a SIP
// URI's user part.
std::string_view RungDestination(const CallUpdate& update) {
  return UriUserPart(update.extension.empty() ? update.to : update.extension);
}

// The call's direction is its own reports' (a child leg's is its parent's concern).
CallEvent::Direction CallDirection(const std::vector<CallUpdate>& updates) {
  for (const CallUpdate& update : updates) {
    if (!update.child_leg && !update.recording &&
        update.direction != CallEvent::DIRECTION_UNSPECIFIED) {
      return update.direction;
    }
  }
  return CallEvent::DIRECTION_UNSPECIFIED;
}

bool UnansweredEnd(const CallUpdate& update) {
  return (update.state == State::kMissed || update.state == State::kBusy ||
          update.state == State::kFailed || update.state == State::kCanceled) &&
         !ReportsAnAnswer(update);
}

bool LegReport(const CallUpdate& update) {
  return update.provider == "generic" && !update.recording && !update.child_leg;
}

// The extensions (their SIP user part) that `ringing` reports of an inbound generic call named:
// the legs of a ring group or a hunt, when it is reported leg by leg.
std::set<std::string_view> RungExtensions(const std::vector<CallUpdate>& updates) {
  std::set<std::string_view> legs;
  for (const CallUpdate& update : updates) {
    if (LegReport(update) && update.state == State::kRinging &&
        !UriUserPart(update.extension).empty()) {
      legs.insert(UriUserPart(update.extension));
    }
  }
  return legs;
}

// The reports of an inbound call posted leg by leg through the generic API (a ring group:
// "ringing" to 201 and to 202, "answered" by 202, "missed" from 201 as 202 picks up) that say
// how another leg ended, not the call: an unanswered end ("missed", "busy", "failed",
// "canceled") after the first answer report, from a destination a "ringing" report of the call
// named, which is neither the answer report's extension nor its `to`; and, before it, such an
// end from an extension a "ringing" report named when several were (a ring group whose first
// agent is busy, a hunt moving on). The call then ends with its own "ended" (or its timeout);
// taken as its end, such a report published the call at once, its talk time lost.
std::vector<bool> LostLegs(const std::vector<CallUpdate>& updates, CallEvent::Direction direction) {
  std::vector<bool> lost(updates.size(), false);
  if (direction != CallEvent::INBOUND) {
    return lost;
  }
  const auto first_answer = std::find_if(updates.begin(), updates.end(), [](const auto& update) {
    return LegReport(update) && ReportsAnAnswer(update);
  });
  if (first_answer == updates.end()) {
    return lost;
  }
  const CallUpdate* answer = &*first_answer;
  auto answerer = [answer](std::string_view destination) {
    return destination == UriUserPart(answer->to) || destination == UriUserPart(answer->extension);
  };
  const std::set<std::string_view> legs = RungExtensions(updates);
  std::set<std::string_view> rung;
  bool answered = false;
  for (size_t i = 0; i < updates.size(); ++i) {
    const CallUpdate& update = updates[i];
    if (!LegReport(update)) {
      continue;
    }
    if (update.state == State::kRinging && !RungDestination(update).empty()) {
      rung.insert(RungDestination(update));
    }
    const std::string_view destination = RungDestination(update);
    if (&update == answer) {
      answered = true;
      continue;
    }
    if (!UnansweredEnd(update) || destination.empty() || answerer(destination)) {
      continue;
    }
    lost[i] = answered ? rung.contains(destination) : legs.size() > 1 && legs.contains(destination);
  }
  return lost;
}

// Before any answer, the reports of an inbound generic call that say how one leg ended while
// another still rings: an unanswered end from an extension a `ringing` report named, while
// another extension so named has no unanswered end (a ring group whose first agent is busy, a
// hunt moving on to the next agent). Taken as the call's end, such a report published the call
// as missed, and the other agent's answer seconds later was thrown away. The call's own end (from
// the line's number, from no destination, from the last leg) settles it as before; a leg that
// never reports its end is waited for CallAssembler::Options::ring_window after the call's last
// report.
std::vector<bool> RingingLegEnds(const std::vector<CallUpdate>& updates,
                                 CallEvent::Direction direction) {
  std::vector<bool> ringing(updates.size(), false);
  if (direction != CallEvent::INBOUND ||
      std::any_of(updates.begin(), updates.end(), ReportsAnAnswer)) {
    return ringing;
  }
  const std::set<std::string_view> legs = RungExtensions(updates);
  if (legs.size() < 2) {
    return ringing;
  }
  std::set<std::string_view> ended;
  for (const CallUpdate& update : updates) {
    if (LegReport(update) && UnansweredEnd(update)) {
      ended.insert(RungDestination(update));
    }
  }
  const bool all_ended = std::all_of(
      legs.begin(), legs.end(), [&ended](std::string_view leg) { return ended.contains(leg); });
  if (all_ended) {
    return ringing;
  }
  for (size_t i = 0; i < updates.size(); ++i) {
    const CallUpdate& update = updates[i];
    ringing[i] =
        LegReport(update) && UnansweredEnd(update) && legs.contains(RungDestination(update));
  }
  return ringing;
}

// When a settling call stands on its outcome: `window` after the first final report that
// waits for a deciding one (an unanswered generic outcome, Twilio's parent "completed"),
// whatever retries of it came since. Reports stored without their arrival time count from
// `now`. A ring group reported leg by leg and not answered: a named leg's end is the call's
// possible end only once every leg named has ended (RingingLegEnds), so the window runs from the
// last of the legs' first ends (a retry of one does not extend it), unless another final report
// (the call's own end: from the line's number, or from no destination) came.
Clock::time_point SettleDeadline(const std::vector<CallUpdate>& updates, Clock::time_point now,
                                 std::chrono::milliseconds window) {
  std::set<std::string_view> named;  // the legs, for an unanswered inbound ring group
  if (CallDirection(updates) == CallEvent::INBOUND &&
      std::none_of(updates.begin(), updates.end(), ReportsAnAnswer)) {
    named = RungExtensions(updates);
    if (named.size() < 2) {
      named.clear();
    }
  }
  std::optional<Clock::time_point> first;
  std::map<std::string_view, Clock::time_point> legs_first;
  for (const CallUpdate& update : updates) {
    const bool settles = update.dial_result
                             ? update.parent_over
                             : IsFinal(update.state) && (update.uncertain || update.awaits_dial);
    if (update.recording || !settles) {
      continue;
    }
    Clock::time_point at = update.received.value_or(now);
    if (LegReport(update) && UnansweredEnd(update) && named.contains(RungDestination(update))) {
      auto [leg, added] = legs_first.try_emplace(RungDestination(update), at);
      if (!added && at < leg->second) {
        leg->second = at;
      }
      continue;
    }
    if (!first || at < *first) {
      first = at;
    }
  }
  if (!first && !legs_first.empty()) {
    first =
        std::max_element(legs_first.begin(), legs_first.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        })->second;
  }
  return std::chrono::time_point_cast<Clock::duration>(first.value_or(now) + window);
}

Open FoldAll(const std::vector<CallUpdate>& updates, bool legs_over = true) {
  const CallEvent::Direction direction = CallDirection(updates);
  const std::vector<bool> lost_legs = LostLegs(updates, direction);
  const std::vector<bool> ringing_legs =
      legs_over ? std::vector<bool>(updates.size(), false) : RingingLegEnds(updates, direction);
  Open open;
  if (direction == CallEvent::INBOUND) {
    open.legs_rung = RungExtensions(updates).size();
  }
  for (const CallUpdate& update : updates) {
    if (update.received && (!open.last_received || *open.last_received < *update.received)) {
      open.last_received = update.received;
    }
  }
  // Click-to-call: the customer is the party the outbound parent <Dial>ed, named by the child
  // legs' To (the parent's To is the agent's phone): the answered leg's, else the last one's.
  std::string callee;
  bool callee_answered = false;
  for (size_t i = 0; i < updates.size(); ++i) {
    const CallUpdate& update = updates[i];
    if (lost_legs[i]) {
      continue;
    }
    if (ringing_legs[i]) {
      open.legs_ringing = true;
      continue;
    }
    if (!update.child_leg) {
      Fold(&open, update);
      continue;
    }
    if (direction != CallEvent::OUTBOUND) {
      continue;  // an inbound call's <Dial> leg: its parent's <Dial> action decides
    }
    const bool answered = update.state == State::kEnded || update.state == State::kAnswered;
    if (!update.to.empty() && (!callee_answered || answered)) {
      callee = update.to;
      callee_answered = answered;
    }
    if (std::optional<CallUpdate> dial = ChildLegAsDial(update)) {
      Fold(&open, *dial);
    }
  }
  if (!callee.empty()) {
    open.call.set_to_number(callee);
    open.counterpart_e164.clear();
  }
  return open;
}

nlohmann::json TimeJson(const std::optional<Clock::time_point>& time) {
  if (!time) {
    return nullptr;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(time->time_since_epoch()).count();
}

// A stored time (milliseconds since 1970) within the bounds a provider's time is held to
// (ClockTime: 1970 to 2262): the store only ever holds such times, and a corrupted one is no
// time, where converting one past 2262 to the clock's nanoseconds overflowed.
std::optional<Clock::time_point> StoredTime(int64_t millis) {
  static const int64_t kLast = LastClockSecond() * 1000;
  if (millis < 0 || millis > kLast) {
    return std::nullopt;
  }
  return Clock::time_point(std::chrono::milliseconds(millis));
}

std::optional<Clock::time_point> TimeFrom(const nlohmann::json& json) {
  if (!json.is_number_integer()) {
    return std::nullopt;
  }
  return StoredTime(json.get<int64_t>());
}

constexpr uint64_t kEveryByte = 0x0101010101010101;
constexpr uint64_t kHighBits = 0x8080808080808080;

// Whether none of the 8 bytes of `word` needs an escape or is past ASCII: no byte below 0x20,
// no '"' or '\\', none with its high bit set. (x - kEveryByte * n) & ~x & kHighBits is nonzero
// exactly when a byte of x is below n (n <= 0x80): the lowest such byte borrows, none other can
// set its high bit unless one below borrowed.
bool PlainWord(uint64_t word) {
  const uint64_t quote = word ^ (kEveryByte * '"');
  const uint64_t backslash = word ^ (kEveryByte * '\\');
  const uint64_t below_space = (word - kEveryByte * 0x20) & ~word;
  const uint64_t is_quote = (quote - kEveryByte) & ~quote;
  const uint64_t is_backslash = (backslash - kEveryByte) & ~backslash;
  return ((below_space | is_quote | is_backslash | word) & kHighBits) == 0;
}

bool PlainByte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte >= 0x20 && byte < 0x80 && c != '"' && c != '\\';
}

// Whether `text` goes in a JSON string as it is (AppendAsciiJson escapes nothing in it), eight
// bytes at a time: the last eight (or, below eight, the first and last four) overlap the bytes
// seen already rather than going one by one.
bool PlainText(std::string_view text) {
  const char* const data = text.data();
  const size_t size = text.size();
  uint64_t word;
  if (size >= sizeof word) {
    for (size_t i = 0; i + sizeof word < size; i += sizeof word) {
      std::memcpy(&word, data + i, sizeof word);
      if (!PlainWord(word)) {
        return false;
      }
    }
    std::memcpy(&word, data + size - sizeof word, sizeof word);
    return PlainWord(word);
  }
  if (size >= sizeof(uint32_t)) {
    uint32_t first;
    uint32_t last;
    std::memcpy(&first, data, sizeof first);
    std::memcpy(&last, data + size - sizeof last, sizeof last);
    return PlainWord(first | uint64_t{last} << 32);
  }
  for (size_t i = 0; i < size; ++i) {
    if (!PlainByte(data[i])) {
      return false;
    }
  }
  return true;
}

// Writes `text` at `out` as a JSON string, escaped as nlohmann::json's dump does, into room for
// 2 + 6 * text.size() bytes (a control character takes six); the end of what it wrote,
// or null when `text` holds a byte past ASCII.
char* WriteAsciiJson(char* out, std::string_view text) {
  *out++ = '"';
  if (PlainText(text)) {
    out += text.copy(out, text.size());
    *out++ = '"';
    return out;
  }
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      return nullptr;
    }
    if (PlainByte(c)) {
      *out++ = c;
      continue;
    }
    *out++ = '\\';
    switch (c) {
      case '"':
        *out++ = '"';
        break;
      case '\\':
        *out++ = '\\';
        break;
      case '\b':
        *out++ = 'b';
        break;
      case '\f':
        *out++ = 'f';
        break;
      case '\n':
        *out++ = 'n';
        break;
      case '\r':
        *out++ = 'r';
        break;
      case '\t':
        *out++ = 't';
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        const char escaped[] = {'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
        out = std::copy(std::begin(escaped), std::end(escaped), out);
      }
    }
  }
  *out++ = '"';
  return out;
}

}  // namespace

bool AppendAsciiJson(std::string* out, std::string_view text) {
  const size_t start = out->size();
  if (PlainText(text)) {
    // A report's texts: quoted as they are, in one step.
    out->resize(start + text.size() + 2);
    char* quoted = out->data() + start;
    quoted[0] = '"';
    text.copy(quoted + 1, text.size());
    quoted[text.size() + 1] = '"';
    return true;
  }
  out->resize(start + 2 + 6 * text.size());
  char* const end = WriteAsciiJson(out->data() + start, text);
  out->resize(end ? end - out->data() : start);
  return end != nullptr;
}

std::string CallEventId(std::string_view provider, std::string_view provider_call_id) {
  std::string id;
  ingest::AppendPart(&id, provider);
  ingest::AppendPart(&id, provider_call_id);
  return ingest::EventId("call", id);
}

bool IsInternalExtension(std::string_view number, int max_digits) {
  return !number.empty() && number.size() <= static_cast<size_t>(max_digits) &&
         std::all_of(number.begin(), number.end(), [](char c) { return absl::ascii_isdigit(c); });
}

bool IsFeatureCode(std::string_view dialled) {
  auto code_char = [](char c) { return absl::ascii_isdigit(c) || c == '*' || c == '#'; };
  return !dialled.empty() && dialled.size() <= 16 && (dialled[0] == '*' || dialled[0] == '#') &&
         std::all_of(dialled.begin(), dialled.end(), code_char);
}

bool ExtensionsOfOnePbx(std::string_view a, std::string_view b, int max_digits) {
  return IsInternalExtension(UriUserPart(a), max_digits) &&
         IsInternalExtension(UriUserPart(b), max_digits) && UriHost(a) == UriHost(b);
}

bool FeatureCodeOfPbx(std::string_view caller, std::string_view dialled, int max_digits) {
  return IsInternalExtension(UriUserPart(caller), max_digits) &&
         IsFeatureCode(UriUserPart(dialled)) && UriHost(caller) == UriHost(dialled);
}

namespace {

// A report that says nothing of the call itself: a recording, a <Dial>'s leg, Twilio's
// asynchronous answering machine verdict (CallSid and AnsweredBy: its only report without a
// Direction; of a <Dial>'s leg when the <Number> asked for it).
bool SaysNothingOfTheCall(const CallUpdate& update) {
  return update.recording || update.child_leg ||
         (update.provider == "twilio" && update.direction == CallEvent::DIRECTION_UNSPECIFIED);
}

}  // namespace

Decision Decide(const std::vector<CallUpdate>& updates, bool settle_over, bool quiet_over,
                Clock::time_point now) {
  Decision decision;
  if (std::all_of(updates.begin(), updates.end(), SaysNothingOfTheCall)) {
    // Nothing about the call itself yet: never published, even once it timed out (a verdict
    // alone made an "answered" call without a number or a direction).
    return decision;
  }
  // Past the call's timeout (quiet_over: the ticker), a leg that never reported its end is
  // waited for no more: the ends reported stand.
  Open open = FoldAll(updates, /*legs_over=*/quiet_over);
  CallEvent::Direction direction = open.call.direction();
  // A call that rang several agents and that nobody took is credited to nobody (the line's queue
  // assigns it), not to whichever leg reported last; one that rang a single extension stays its.
  auto uncredit_unanswered = [&open](CallEvent::Outcome outcome) {
    if (outcome != CallEvent::ANSWERED && open.legs_rung > 1) {
      open.call.clear_operator_name();
      open.call.clear_extension();
    }
  };
  if (open.dial_state) {
    const bool answered = !open.answered_legs.empty();
    if (!quiet_over && !open.parent_completed && (!answered || *open.dial_state == State::kEnded)) {
      // The call goes on after this <Dial> until the parent's "completed" says it is over
      // (at most the open calls' timeout): after an answered leg a transfer may follow, after
      // an unanswered one a hunt (the next agent's <Dial>) whose answer makes the call
      // answered. An unanswered leg after an answered one changes nothing: it was answered.
      return decision;
    }
    if (answered && open.leg_without_duration && !open.final_state && !settle_over && !quiet_over) {
      // A conference's <Dial> action says neither its leg nor its talk time: the parent's
      // "completed", sent with it, gives the time (CallDuration); answered at once when it
      // comes, after the settle window otherwise (talk time unknown).
      decision.kind = Decision::Kind::kSettling;
      decision.finished = Finish(std::move(open), CallEvent::ANSWERED, false, now);
      return decision;
    }
    if (!answered && !settle_over && !quiet_over) {
      // The parent is over, no leg answered so far: an action of a later leg, delayed or posted
      // in parallel, may still say one was; missed once the settle window passed.
      const CallEvent::Outcome outcome = OutcomeOf(*open.dial_state, direction, false);
      decision.kind = Decision::Kind::kSettling;
      decision.finished = Finish(std::move(open), outcome, false, now);
      return decision;
    }
    decision.kind = Decision::Kind::kFinal;
    decision.finished = Finish(
        std::move(open),
        answered ? CallEvent::ANSWERED : OutcomeOf(*open.dial_state, direction, false), false, now);
    return decision;
  }
  if (!open.final_state) {
    if (!quiet_over) {
      if (open.legs_ringing) {
        decision.legs_ringing_since = open.last_received;
      }
      return decision;
    }
    decision.kind = Decision::Kind::kFinal;
    CallEvent::Outcome outcome = open.answered ? CallEvent::ANSWERED : CallEvent::MISSED;
    uncredit_unanswered(outcome);
    decision.finished = Finish(std::move(open), outcome, /*incomplete=*/true, now);
    return decision;
  }
  CallEvent::Outcome outcome = OutcomeOf(*open.final_state, direction, open.answered);
  if (open.voicemail) {
    outcome = CallEvent::VOICEMAIL;
  } else if (open.answered) {
    // Somebody talked: whatever a leg reported before or after (a ring group's "missed").
    outcome = CallEvent::ANSWERED;
  }
  // An unanswered outcome may still be overturned by an answer report; Twilio's parent
  // "completed" by a <Dial> action.
  bool uncertain = (open.uncertain && outcome != CallEvent::ANSWERED) || open.awaits_dial;
  decision.kind = uncertain && !settle_over ? Decision::Kind::kSettling : Decision::Kind::kFinal;
  uncredit_unanswered(outcome);
  decision.finished = Finish(std::move(open), outcome, false, now);
  return decision;
}

namespace {

void AppendTimeJson(std::string* out, const std::optional<Clock::time_point>& time) {
  if (!time) {
    out->append("null");
    return;
  }
  absl::StrAppend(
      out, std::chrono::duration_cast<std::chrono::milliseconds>(time->time_since_epoch()).count());
}

// SerializeUpdateJson's bytes written directly (its keys in nlohmann's sorted order), without
// building and tearing down a tree of 26 nodes per report, into a buffer sized once for the
// longest form (no check of its room per piece); nullopt when a text is not ASCII.
std::optional<std::string> SerializeAsciiUpdate(const CallUpdate& update) {
  // 512 bytes for all but the texts: the 28 keys with their punctuation (under 200 bytes), 4
  // times (at most 20 characters each), 4 numbers (11), 8 flags ("false"); each text quoted,
  // each of its characters escaped in at most 6 bytes (WriteAsciiJson).
  size_t bound = 512;
  for (const std::string* text :
       {&update.counterpart_e164, &update.extension, &update.from, &update.provider_call_id,
        &update.dial_leg, &update.line, &update.operator_name, &update.provider,
        &update.provider_status, &update.recording_url, &update.to, &update.transferred_to}) {
    bound += 2 + 6 * text->size();
  }
  std::string out(bound, '\0');
  char* p = out.data();
  bool ascii = true;
  auto raw = [&p](std::string_view bytes) { p += bytes.copy(p, bytes.size()); };
  auto number = [&p](int64_t value) { p = std::to_chars(p, p + 20, value).ptr; };
  auto text = [&](std::string_view key, const std::string& value) {
    raw(key);
    if (char* end = WriteAsciiJson(p, value)) {
      p = end;
    } else {
      ascii = false;
    }
  };
  auto flag = [&](std::string_view key, bool value) {
    raw(key);
    raw(value ? "true" : "false");
  };
  auto time = [&](std::string_view key, const std::optional<Clock::time_point>& value) {
    raw(key);
    if (value) {
      number(
          std::chrono::duration_cast<std::chrono::milliseconds>(value->time_since_epoch()).count());
    } else {
      raw("null");
    }
  };
  time("{\"aa\":", update.answered_at);
  flag(",\"am\":", update.machine);
  flag(",\"ans\":", update.answered);
  raw(",\"att\":");
  number(update.attempts);
  flag(",\"cl\":", update.child_leg);
  raw(",\"d\":");
  number(static_cast<int>(update.direction));
  flag(",\"dial\":", update.dial_result);
  raw(",\"dur\":");
  if (update.duration_seconds) {
    number(*update.duration_seconds);
  } else {
    raw("null");
  }
  text(",\"e164\":", update.counterpart_e164);
  time(",\"ea\":", update.ended_at);
  text(",\"ext\":", update.extension);
  text(",\"from\":", update.from);
  text(",\"id\":", update.provider_call_id);
  text(",\"leg\":", update.dial_leg);
  text(",\"line\":", update.line);
  text(",\"op\":", update.operator_name);
  text(",\"p\":", update.provider);
  flag(",\"po\":", update.parent_over);
  text(",\"ps\":", update.provider_status);
  time(",\"rcv\":", update.received);
  text(",\"rec\":", update.recording_url);
  flag(",\"recd\":", update.recording);
  raw(",\"s\":");
  number(static_cast<int>(update.state));
  time(",\"sa\":", update.started_at);
  text(",\"to\":", update.to);
  text(",\"tr\":", update.transferred_to);
  flag(",\"unc\":", update.uncertain);
  flag(",\"wd\":", update.awaits_dial);
  raw("}");
  if (!ascii) {
    return std::nullopt;
  }
  out.resize(p - out.data());
  return out;
}

}  // namespace

std::string SerializeUpdate(const CallUpdate& update) {
  if (std::optional<std::string> ascii = SerializeAsciiUpdate(update)) {
    return std::move(*ascii);
  }
  return SerializeUpdateJson(update);
}

std::string SerializeUpdateJson(const CallUpdate& update) {
  nlohmann::json json = {{"p", update.provider},
                         {"id", update.provider_call_id},
                         {"s", static_cast<int>(update.state)},
                         {"d", static_cast<int>(update.direction)},
                         {"from", update.from},
                         {"to", update.to},
                         {"line", update.line},
                         {"op", update.operator_name},
                         {"ext", update.extension},
                         {"rec", update.recording_url},
                         {"ps", update.provider_status},
                         {"tr", update.transferred_to},
                         {"sa", TimeJson(update.started_at)},
                         {"aa", TimeJson(update.answered_at)},
                         {"ea", TimeJson(update.ended_at)},
                         {"dur", update.duration_seconds ? nlohmann::json(*update.duration_seconds)
                                                         : nlohmann::json(nullptr)},
                         {"att", update.attempts},
                         {"ans", update.answered},
                         {"e164", update.counterpart_e164},
                         {"dial", update.dial_result},
                         {"leg", update.dial_leg},
                         {"po", update.parent_over},
                         {"unc", update.uncertain},
                         {"wd", update.awaits_dial},
                         {"rcv", TimeJson(update.received)},
                         {"recd", update.recording},
                         {"cl", update.child_leg},
                         {"am", update.machine}};
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<CallUpdate> ParseUpdateFast(std::string_view text) {
  enum Name {
    kProvider,
    kId,
    kState,
    kDirection,
    kFrom,
    kTo,
    kLine,
    kOperator,
    kExtension,
    kRecording,
    kStatus,
    kTransferred,
    kStarted,
    kAnswered,
    kEnded,
    kDuration,
    kAttempts,
    kAnsweredFlag,
    kE164,
    kDial,
    kUncertain,
    kAwaitsDial,
    kReceived,
    kLeg,
    kParentOver,
    kRecordingOnly,
    kChildLeg,
    kMachine,
    kNames
  };
  static constexpr std::string_view kKeys[kNames] = {
      "p",   "id", "s",   "d",   "from", "to",   "line", "op",  "ext",  "rec",
      "ps",  "tr", "sa",  "aa",  "ea",   "dur",  "att",  "ans", "e164", "dial",
      "unc", "wd", "rcv", "leg", "po",   "recd", "cl",   "am"};
  std::array<JsonField, kNames> fields;
  if (!ReadJsonFields(text, kKeys, fields)) {
    return std::nullopt;
  }
  using Kind = JsonField::Kind;
  bool certain = true;
  auto text_of = [&](Name name, std::string* out) {
    if (fields[name].kind != Kind::kString) {
      certain = false;
      return;
    }
    *out = std::move(fields[name].text);
  };
  // Absent (an update stored before the field existed): left as it is.
  auto optional_text_of = [&](Name name, std::string* out) {
    if (fields[name].kind != Kind::kAbsent) {
      text_of(name, out);
    }
  };
  auto int32_of = [&](Name name, int32_t* out) {
    if (fields[name].kind != Kind::kInteger || !absl::SimpleAtoi(fields[name].text, out)) {
      certain = false;
    }
  };
  auto flag_of = [&](Name name, bool* out) {
    if (fields[name].kind != Kind::kBool) {
      certain = false;
      return;
    }
    *out = fields[name].number != 0;
  };
  auto optional_flag_of = [&](Name name, bool* out) {
    if (fields[name].kind != Kind::kAbsent) {
      flag_of(name, out);
    }
  };
  // Any kind but an integer is no time; an integer past 64 bits is nlohmann's to read.
  auto time_of = [&](Name name, std::optional<Clock::time_point>* out) {
    int64_t millis = 0;
    if (fields[name].kind == Kind::kAbsent ||
        (fields[name].kind == Kind::kInteger && !absl::SimpleAtoi(fields[name].text, &millis))) {
      certain = false;
    } else if (fields[name].kind == Kind::kInteger) {
      *out = StoredTime(millis);
    }
  };
  CallUpdate update;
  int32_t state = 0;
  int32_t direction = 0;
  text_of(kProvider, &update.provider);
  text_of(kId, &update.provider_call_id);
  int32_of(kState, &state);
  int32_of(kDirection, &direction);
  text_of(kFrom, &update.from);
  text_of(kTo, &update.to);
  text_of(kLine, &update.line);
  text_of(kOperator, &update.operator_name);
  text_of(kExtension, &update.extension);
  text_of(kRecording, &update.recording_url);
  text_of(kStatus, &update.provider_status);
  text_of(kTransferred, &update.transferred_to);
  time_of(kStarted, &update.started_at);
  time_of(kAnswered, &update.answered_at);
  time_of(kEnded, &update.ended_at);
  if (fields[kDuration].kind == Kind::kAbsent) {
    certain = false;
  } else if (fields[kDuration].kind == Kind::kInteger) {
    int32_t duration = 0;
    int32_of(kDuration, &duration);
    update.duration_seconds = duration;
  }
  int32_of(kAttempts, &update.attempts);
  flag_of(kAnsweredFlag, &update.answered);
  text_of(kE164, &update.counterpart_e164);
  flag_of(kDial, &update.dial_result);
  flag_of(kUncertain, &update.uncertain);
  flag_of(kAwaitsDial, &update.awaits_dial);
  if (fields[kReceived].kind != Kind::kAbsent) {
    time_of(kReceived, &update.received);
  }
  optional_text_of(kLeg, &update.dial_leg);
  optional_flag_of(kParentOver, &update.parent_over);
  optional_flag_of(kRecordingOnly, &update.recording);
  optional_flag_of(kChildLeg, &update.child_leg);
  optional_flag_of(kMachine, &update.machine);
  if (!certain || state < 0 || state > static_cast<int>(State::kCanceled)) {
    return std::nullopt;
  }
  update.state = static_cast<State>(state);
  update.direction = static_cast<CallEvent::Direction>(direction);
  return update;
}

std::optional<CallUpdate> ParseUpdate(std::string_view text) {
  // Every open call's updates are read back on each of its reports: by simdjson, and by
  // nlohmann whenever that reading is not certain (json_fields.h), so that what a stored update
  // means does not depend on which one read it.
  if (std::optional<CallUpdate> update = ParseUpdateFast(text)) {
    return update;
  }
  return ParseUpdateJson(text);
}

std::optional<CallUpdate> ParseUpdateJson(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return std::nullopt;
  }
  try {
    CallUpdate update;
    update.provider = json.at("p").get<std::string>();
    update.provider_call_id = json.at("id").get<std::string>();
    int state = json.at("s").get<int>();
    if (state < 0 || state > static_cast<int>(State::kCanceled)) {
      return std::nullopt;
    }
    update.state = static_cast<State>(state);
    update.direction = static_cast<CallEvent::Direction>(json.at("d").get<int>());
    update.from = json.at("from").get<std::string>();
    update.to = json.at("to").get<std::string>();
    update.line = json.at("line").get<std::string>();
    update.operator_name = json.at("op").get<std::string>();
    update.extension = json.at("ext").get<std::string>();
    update.recording_url = json.at("rec").get<std::string>();
    update.provider_status = json.at("ps").get<std::string>();
    update.transferred_to = json.at("tr").get<std::string>();
    update.started_at = TimeFrom(json.at("sa"));
    update.answered_at = TimeFrom(json.at("aa"));
    update.ended_at = TimeFrom(json.at("ea"));
    if (json.at("dur").is_number_integer()) {
      update.duration_seconds = json.at("dur").get<int32_t>();
    }
    update.attempts = json.at("att").get<int32_t>();
    update.answered = json.at("ans").get<bool>();
    update.counterpart_e164 = json.at("e164").get<std::string>();
    update.dial_result = json.at("dial").get<bool>();
    update.uncertain = json.at("unc").get<bool>();
    update.awaits_dial = json.at("wd").get<bool>();
    // Absent from reports stored before these fields existed.
    if (auto it = json.find("rcv"); it != json.end()) {
      update.received = TimeFrom(*it);
    }
    if (auto it = json.find("leg"); it != json.end()) {
      update.dial_leg = it->get<std::string>();
    }
    if (auto it = json.find("po"); it != json.end()) {
      update.parent_over = it->get<bool>();
    }
    if (auto it = json.find("recd"); it != json.end()) {
      update.recording = it->get<bool>();
    }
    if (auto it = json.find("cl"); it != json.end()) {
      update.child_leg = it->get<bool>();
    }
    if (auto it = json.find("am"); it != json.end()) {
      update.machine = it->get<bool>();
    }
    return update;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

namespace {

// AsStored in place: `update` becomes what ParseUpdate(serialized) gives; false when that is
// std::nullopt.
bool MakeStored(CallUpdate* update, std::string_view serialized) {
  for (const std::string* text :
       {&update->provider, &update->provider_call_id, &update->from, &update->to, &update->line,
        &update->operator_name, &update->extension, &update->recording_url,
        &update->provider_status, &update->transferred_to, &update->counterpart_e164,
        &update->dial_leg}) {
    for (char c : *text) {
      if (static_cast<unsigned char>(c) >= 0x80) {
        std::optional<CallUpdate> parsed = ParseUpdate(serialized);
        if (!parsed) {
          return false;
        }
        *update = std::move(*parsed);
        return true;
      }
    }
  }
  for (std::optional<Clock::time_point>* time :
       {&update->started_at, &update->answered_at, &update->ended_at, &update->received}) {
    if (*time) {
      *time = Clock::time_point(
          std::chrono::duration_cast<std::chrono::milliseconds>((*time)->time_since_epoch()));
    }
  }
  return true;
}

}  // namespace

std::optional<CallUpdate> AsStored(const CallUpdate& update, std::string_view serialized) {
  CallUpdate stored = update;
  if (!MakeStored(&stored, serialized)) {
    return std::nullopt;
  }
  return stored;
}

std::string SerializeFinished(const FinishedCall& finished) {
  // SerializeFinishedJson's bytes (keys in nlohmann's sorted order), without its tree.
  std::string out = "{\"at\":";
  AppendTimeJson(&out, finished.occurred);
  out.append(",\"call\":\"");
  out.append(absl::Base64Escape(finished.call.SerializeAsString()));
  out.append("\",\"e164\":");
  if (!AppendAsciiJson(&out, finished.counterpart_e164)) {
    return SerializeFinishedJson(finished);
  }
  out.append(",\"event_id\":");
  if (!AppendAsciiJson(&out, finished.event_id)) {
    return SerializeFinishedJson(finished);
  }
  out.push_back('}');
  return out;
}

std::string SerializeFinishedJson(const FinishedCall& finished) {
  nlohmann::json json = {{"event_id", finished.event_id},
                         {"e164", finished.counterpart_e164},
                         {"at", TimeJson(finished.occurred)},
                         {"call", absl::Base64Escape(finished.call.SerializeAsString())}};
  return json.dump();
}

std::optional<FinishedCall> ParseFinished(std::string_view text) {
  // Whatever is read back from the store was settled before: published again. Read by
  // simdjson (a provider's retry of a settled call reads one per report), and by nlohmann
  // whenever that reader is not certain (json_fields.h): what a stored call means does not
  // depend on which one read it.
  static constexpr std::string_view kNames[] = {"event_id", "e164", "at", "call"};
  std::array<JsonField, std::size(kNames)> fields;
  using Kind = JsonField::Kind;
  int64_t millis = 0;
  if (ReadJsonFields(text, kNames, fields) && fields[0].kind == Kind::kString &&
      fields[1].kind == Kind::kString && fields[2].kind != Kind::kAbsent &&
      fields[3].kind == Kind::kString &&
      (fields[2].kind != Kind::kInteger || absl::SimpleAtoi(fields[2].text, &millis))) {
    FinishedCall finished;
    finished.event_id = std::move(fields[0].text);
    finished.counterpart_e164 = std::move(fields[1].text);
    if (fields[2].kind == Kind::kInteger) {
      finished.occurred = StoredTime(millis).value_or(Clock::time_point{});
    }
    std::string bytes;
    if (!absl::Base64Unescape(fields[3].text, &bytes) || !finished.call.ParseFromString(bytes)) {
      return std::nullopt;
    }
    finished.republication = true;
    return finished;
  }
  return ParseFinishedJson(text);
}

std::optional<FinishedCall> ParseFinishedJson(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return std::nullopt;
  }
  try {
    FinishedCall finished;
    finished.event_id = json.at("event_id").get<std::string>();
    finished.counterpart_e164 = json.at("e164").get<std::string>();
    finished.occurred = TimeFrom(json.at("at")).value_or(Clock::time_point{});
    std::string bytes;
    if (!absl::Base64Unescape(json.at("call").get<std::string>(), &bytes) ||
        !finished.call.ParseFromString(bytes)) {
      return std::nullopt;
    }
    finished.republication = true;
    return finished;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

// ---------------------------------------------------------------------------------------------
// CallStore's asynchronous forms over the synchronous ones

void CallStore::AppendAsync(const std::string& key, const std::string& update,
                            std::chrono::seconds ttl, size_t max_updates,
                            std::optional<FirstDecision> if_first, SnapshotDone done) {
  auto snapshot = Append(key, update, ttl, max_updates);
  if (snapshot.ok() && if_first && snapshot->appended && !snapshot->settled &&
      snapshot->updates.size() == 1 && if_first->finished.empty()) {
    if (if_first->max_open_calls && snapshot->open_calls >= *if_first->max_open_calls) {
      (void)Forget(key);
      snapshot->updates.clear();
      snapshot->appended = false;
      snapshot->refused = true;
    } else {
      // Another thread's report between the append and this (two locked steps here) schedules
      // the call by its own decision, over this report too.
      snapshot->scheduled = ScheduleHeld(key, if_first->due, 1).value_or(false);
    }
  } else if (snapshot.ok() && if_first && snapshot->appended && !snapshot->settled &&
             snapshot->updates.size() == 1) {
    auto earlier = Settle(key, if_first->finished, ttl);
    if (!earlier.ok()) {
      done(earlier.status());
      return;
    }
    if (*earlier) {
      snapshot->settled = std::move(*earlier);  // settled meanwhile by another thread
    } else {
      (void)Schedule(key, if_first->due);
      snapshot->decided = true;
      snapshot->updates.clear();
    }
  }
  done(std::move(snapshot));
}

void CallStore::SettleAsync(const std::string& key, const std::string& finished,
                            std::chrono::seconds ttl, Clock::time_point due, SettleDone done) {
  auto earlier = Settle(key, finished, ttl);
  if (earlier.ok() && !*earlier) {
    (void)Schedule(key, due);
  }
  done(std::move(earlier));
}

void CallStore::ScheduleHeldAsync(const std::string& key, Clock::time_point due, size_t held,
                                  StatusDone done) {
  done(ScheduleHeld(key, due, held).status());
}

void CallStore::UnscheduleAsync(const std::string& key, StatusDone done) { done(Unschedule(key)); }

void CallStore::ForgetAsync(const std::string& key, StatusDone done) { done(Forget(key)); }

void CallStore::ReadDueAsync(std::function<void(absl::StatusOr<DueState>)> done) {
  done(ReadDue());
}

void CallStore::AdmitLateRecordingAsync(const std::string& key, const std::string& recording,
                                        size_t max, std::chrono::seconds ttl,
                                        std::function<void(absl::StatusOr<LateRecording>)> done) {
  done(AdmitLateRecording(key, recording, max, ttl));
}

// ---------------------------------------------------------------------------------------------
// MemoryCallStore

MemoryCallStore::MemoryCallStore(size_t max_calls, size_t max_settled)
    : max_calls_(max_calls), max_settled_(max_settled) {}

CallStore::Snapshot MemoryCallStore::SnapshotLocked(const std::string& key) const {
  Snapshot snapshot;
  if (auto it = updates_.find(key); it != updates_.end()) {
    snapshot.updates = it->second;
  }
  if (auto it = settled_.find(key); it != settled_.end()) {
    snapshot.settled = it->second.finished;
    snapshot.published = it->second.published;
  }
  snapshot.open_calls = due_.size();
  return snapshot;
}

absl::StatusOr<CallStore::Snapshot> MemoryCallStore::Append(const std::string& key,
                                                            const std::string& update,
                                                            std::chrono::seconds,
                                                            size_t max_updates) {
  std::lock_guard lock(mutex_);
  if (settled_.count(key) != 0) {
    Snapshot snapshot = SnapshotLocked(key);
    snapshot.appended = false;
    return snapshot;
  }
  if (auto it = updates_.find(key); it != updates_.end() && it->second.size() >= max_updates) {
    Snapshot snapshot = SnapshotLocked(key);
    snapshot.appended = false;
    return snapshot;
  }
  auto [it, created] = updates_.try_emplace(key);
  if (created) {
    updates_order_.push_back(key);
    // Bounded: the calls heard of first are forgotten first (settled ones long since).
    while (updates_order_.size() > max_calls_ + max_settled_) {
      updates_.erase(updates_order_.front());
      due_.erase(updates_order_.front());
      updates_order_.pop_front();
    }
  }
  updates_[key].push_back(update);
  return SnapshotLocked(key);
}

absl::StatusOr<CallStore::Snapshot> MemoryCallStore::Read(const std::string& key) {
  std::lock_guard lock(mutex_);
  return SnapshotLocked(key);
}

absl::StatusOr<std::optional<std::string>> MemoryCallStore::Settle(const std::string& key,
                                                                   const std::string& finished,
                                                                   std::chrono::seconds) {
  std::lock_guard lock(mutex_);
  if (auto it = settled_.find(key); it != settled_.end()) {
    return std::optional<std::string>(it->second.finished);
  }
  if (max_settled_ > 0) {
    settled_[key] = Settlement{.finished = finished};
    settled_order_.push_back(key);
    while (settled_order_.size() > max_settled_) {
      settled_.erase(settled_order_.front());
      settled_order_.pop_front();
    }
  }
  return std::optional<std::string>();
}

absl::Status MemoryCallStore::Schedule(const std::string& key, Clock::time_point due) {
  std::lock_guard lock(mutex_);
  due_[key] = due;
  return absl::OkStatus();
}

absl::StatusOr<bool> MemoryCallStore::ScheduleHeld(const std::string& key, Clock::time_point due,
                                                   size_t held) {
  std::lock_guard lock(mutex_);
  if (settled_.count(key) != 0 || ReportedSinceLocked(key, held)) {
    return false;
  }
  due_[key] = due;
  return true;
}

absl::Status MemoryCallStore::Unschedule(const std::string& key) {
  std::lock_guard lock(mutex_);
  due_.erase(key);
  if (auto it = settled_.find(key); it != settled_.end()) {
    it->second.published = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> MemoryCallStore::UnscheduleUnsettled(const std::string& key, size_t held) {
  std::lock_guard lock(mutex_);
  return settled_.count(key) == 0 && !ReportedSinceLocked(key, held) && due_.erase(key) > 0;
}

bool MemoryCallStore::ReportedSinceLocked(const std::string& key, size_t held) const {
  auto it = updates_.find(key);
  if (it == updates_.end() || it->second.size() < held) {
    return held > 0;  // forgotten or evicted since: not this decision's call any more
  }
  return std::any_of(it->second.begin() + static_cast<std::ptrdiff_t>(held), it->second.end(),
                     [](const std::string& update) {
                       return update.find(kStoredRecordingMark) == std::string::npos;
                     });
}

absl::Status MemoryCallStore::Forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  if (settled_.count(key) != 0) {
    return absl::OkStatus();  // settled meanwhile: scheduled until its publication is confirmed
  }
  due_.erase(key);
  updates_.erase(key);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryCallStore::TakeDue(Clock::time_point now,
                                                                  std::chrono::seconds lease,
                                                                  size_t max) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> keys;
  for (auto& [key, due] : due_) {
    if (keys.size() >= max) {
      break;
    }
    if (due <= now) {
      keys.push_back(key);
      due = now + lease;
    }
  }
  return keys;
}

absl::StatusOr<size_t> MemoryCallStore::OpenCalls() {
  std::lock_guard lock(mutex_);
  return due_.size();
}

absl::StatusOr<CallStore::DueState> MemoryCallStore::ReadDue() {
  std::lock_guard lock(mutex_);
  DueState state{.scheduled = due_.size()};
  for (const auto& [key, due] : due_) {  // at most max_calls; once a second
    if (!state.earliest || due < *state.earliest) {
      state.earliest = due;
    }
  }
  return state;
}

absl::StatusOr<CallStore::LateRecording> MemoryCallStore::AdmitLateRecording(
    const std::string& key, const std::string& recording, size_t max, std::chrono::seconds) {
  std::lock_guard lock(mutex_);
  auto it = settled_.find(key);
  if (it == settled_.end()) {
    // Forgotten since the report read it (max_settled): nothing left to count against.
    return LateRecording::kAdmitted;
  }
  std::vector<std::string>& admitted = it->second.late_recordings;
  if (std::find(admitted.begin(), admitted.end(), recording) != admitted.end()) {
    return LateRecording::kRepeated;
  }
  if (admitted.size() >= max) {
    return LateRecording::kCapped;
  }
  admitted.push_back(recording);
  return LateRecording::kAdmitted;
}

// ---------------------------------------------------------------------------------------------
// CallAssembler

CallAssembler::CallAssembler(Options options, CallStore* store)
    : own_store_(store ? nullptr
                       : std::make_unique<MemoryCallStore>(options.max_open_calls,
                                                           options.max_finished_calls)),
      options_(options),
      store_(store ? store : own_store_.get()) {
  seen_->seen.at = std::chrono::steady_clock::now();
}

absl::StatusOr<CallAssembler::Result> CallAssembler::Apply(const CallUpdate& update,
                                                           Clock::time_point now) {
  // One decision code path: the synchronous form waits for the asynchronous one (the memory
  // store answers before ApplyAsync returns; Redis on its client's Redis thread, so never from a
  // store callback).
  std::promise<absl::StatusOr<Result>> promise;
  std::future<absl::StatusOr<Result>> future = promise.get_future();
  ApplyAsync(update, now,
             [&promise](absl::StatusOr<Result> result) { promise.set_value(std::move(result)); });
  return future.get();
}

void CallAssembler::ApplyAsync(const CallUpdate& reported, Clock::time_point now, Done done) {
  // The report's one copy, which the decisions below and the store's answer read: a vector of
  // it as Decide takes it, moved along without moving the update itself.
  std::vector<CallUpdate> only;
  only.push_back(reported);
  CallUpdate& update = only.front();
  update.received = now;
  std::string key = Key(update.provider, update.provider_call_id);
  std::string serialized = SerializeUpdate(update);
  // The update as it will be read back from the store (times in milliseconds), so that every
  // decision below is the one a later report or replica would take over the stored list.
  if (!MakeStored(&update, serialized)) {
    done(absl::InternalError("a call update could not be read back"));
    return;
  }
  // If this report is the call's first, the decision over the call is the decision over it
  // alone, taken in the store's same step: a final one is recorded (one round trip for the
  // common call reported once, when it is over), and an open or settling call is scheduled
  // (one round trip for a call's first intermediate report). AfterAppend takes the same
  // decision over the same single update when the step says it was the first.
  // Held by pointer: the store's callback, and the std::function it goes into, move it along
  // without moving the event.
  std::shared_ptr<FinishedCall> alone;
  std::optional<CallStore::FirstDecision> if_first;
  {
    Clock::time_point settle_at = SettleDeadline(only, now, options_.settle_window);
    Decision decision = Decide(only, options_.settle_window.count() == 0 || settle_at <= now,
                               /*quiet_over=*/false, now);
    switch (decision.kind) {
      case Decision::Kind::kFinal:
        if_first = CallStore::FirstDecision{.finished = SerializeFinished(decision.finished),
                                            .due = now + options_.due_lease};
        alone = std::make_shared<FinishedCall>(std::move(decision.finished));
        break;
      case Decision::Kind::kOpen: {
        if_first = CallStore::FirstDecision{.due = now + options_.open_ttl,
                                            .max_open_calls = options_.max_open_calls};
        // Not the call's first, a report that leaves the call open on its own (a ringing, an
        // answer) pushes the call's expiry in the same step, when the call is scheduled past
        // any settle deadline or lease (a minute more for the replicas' clocks): the schedule
        // AfterAppend would otherwise send for an open call. A final report asks for none (its
        // settlement's step schedules the call); a <Dial> action or a child leg, open on its
        // own, asks for it and may still settle the call, whose settlement step then writes
        // its lease.
        const Clock::time_point open_above =
            now + std::max<Clock::duration>(options_.settle_window, options_.due_lease) +
            std::chrono::minutes(1);
        if (now + options_.open_ttl > open_above) {
          if_first->open_expiry = now + options_.open_ttl;
          if_first->open_above = open_above;
        }
        break;
      }
      case Decision::Kind::kSettling:
        if_first = CallStore::FirstDecision{.due = settle_at};
        break;
    }
  }
  const std::optional<Clock::time_point> first_due =
      if_first && !alone ? std::optional<Clock::time_point>(if_first->due) : std::nullopt;
  const std::optional<Clock::time_point> open_expiry =
      if_first ? if_first->open_expiry : std::nullopt;
  auto shared_done = std::make_shared<Done>(std::move(done));
  store_->AppendAsync(
      key, serialized, options_.finished_ttl, options_.max_updates_per_call, std::move(if_first),
      [this, key, now, first_due, open_expiry, only = std::move(only), alone = std::move(alone),
       done = shared_done](absl::StatusOr<CallStore::Snapshot> snapshot) mutable {
        if (!snapshot.ok()) {
          (*done)(absl::UnavailableError(snapshot.status().message()));
          return;
        }
        if (snapshot->decided && alone) {
          // Still due (lease) until Published(): a replica that dies before Kafka
          // took the event leaves it to another.
          (*done)(Result{.finished = std::move(*alone)});
          return;
        }
        const std::optional<Clock::time_point> scheduled_at = snapshot->scheduled   ? first_due
                                                              : snapshot->refreshed ? open_expiry
                                                                                    : std::nullopt;
        AfterAppend(key, only.front(), now, std::move(*snapshot), scheduled_at, std::move(*done));
      });
}

void CallAssembler::AfterAppend(const std::string& key, const CallUpdate& update,
                                Clock::time_point now, CallStore::Snapshot snapshot,
                                std::optional<Clock::time_point> scheduled_at, Done done) {
  if (snapshot.settled) {
    // The settlement read into the answer itself (no move of the call out of a local).
    Result earlier{.finished = ParseFinished(*snapshot.settled),
                   .repeated = true,
                   .published = snapshot.published};
    if (earlier.finished) {
      done(std::move(earlier));
      return;
    }
  }
  if (snapshot.refused) {
    done(absl::ResourceExhaustedError("too many calls in progress"));
    return;
  }
  // Past the cap: a final report still settles the call (over what is kept and itself, the
  // settle window not waited for: it is not kept, so no later decision would see it); an
  // intermediate one adds nothing the poster needs.
  const bool full = !snapshot.appended && !snapshot.settled;
  std::vector<CallUpdate> updates;
  for (const std::string& text : snapshot.updates) {
    if (auto parsed = ParseUpdate(text)) {
      updates.push_back(std::move(*parsed));
    }
  }
  // A <Dial>'s leg decides only an outbound call (click-to-call: the customer's leg); an inbound
  // call's legs change nothing (its <Dial> action decides), so past the cap a leg's final status
  // is no more than an intermediate report: taken as the call's own, it settled the call from the
  // legs' states (a simultaneous ring of many numbers fills the cap) before the action came.
  const bool decides =
      (IsFinal(update.state) || update.dial_result) &&
      (!update.child_leg || FoldAll(updates).call.direction() == CallEvent::OUTBOUND);
  if (full && decides && !update.child_leg) {
    // Past the cap a final report settles the call at once: not a ring group's leg ending while
    // another still rings (its end is not the call's), which adds nothing the poster needs.
    std::vector<CallUpdate> with = updates;
    with.push_back(update);
    if (RingingLegEnds(with, CallDirection(with)).back()) {
      done(absl::FailedPreconditionError(
          absl::StrCat("call holds ", options_.max_updates_per_call,
                       " reports (TELEPHONY_MAX_UPDATES_PER_CALL); a leg's end while another rings "
                       "is not taken")));
      return;
    }
  }
  if (full && !decides) {
    done(absl::FailedPreconditionError(
        absl::StrCat("call holds ", options_.max_updates_per_call,
                     " reports (TELEPHONY_MAX_UPDATES_PER_CALL); only a final state is taken")));
    return;
  }
  if (full) {
    updates.push_back(update);
  }
  // The settle window runs from the first report that could settle the call: a sender
  // retrying it (its webhook timed out) neither extends the window nor holds the call back,
  // and a retry past the window settles the call itself. A window of 0 (or a call whose
  // reports are full): every outcome stands at once; a full call does not wait for the
  // parent's "completed" after a <Dial> action either (the action could not be kept).
  Clock::time_point settle_at = SettleDeadline(updates, now, options_.settle_window);
  Decision decision =
      Decide(updates, full || options_.settle_window.count() == 0 || settle_at <= now,
             /*quiet_over=*/full, now);
  auto scheduled = [done](absl::Status status, Result result) {
    if (!status.ok()) {
      done(absl::UnavailableError(status.message()));
      return;
    }
    done(std::move(result));
  };
  switch (decision.kind) {
    case Decision::Kind::kOpen: {
      // Both stores refuse a new call past the bound in the append step itself
      // (Snapshot::refused); this covers one that would not.
      if (snapshot.updates.size() == 1 && snapshot.open_calls >= options_.max_open_calls) {
        store_->ForgetAsync(key, [done](absl::Status) {
          done(absl::ResourceExhaustedError("too many calls in progress"));
        });
        return;
      }
      // Open until its timeout; a ring group's leg ended while another rings: until the
      // ring window after its last report, when its ends reported stand (Due).
      Clock::time_point due = now + options_.open_ttl;
      if (decision.legs_ringing_since) {
        due = std::min(due, *decision.legs_ringing_since + options_.ring_window);
      }
      if (scheduled_at == due) {
        done(Result{});  // scheduled (or its expiry pushed) by the append step itself
        return;
      }
      store_->ScheduleHeldAsync(key, due, snapshot.updates.size(),
                                [scheduled](absl::Status status) { scheduled(status, Result{}); });
      return;
    }
    case Decision::Kind::kSettling: {
      Result result;
      result.settling = decision.finished.call.outcome();
      if (scheduled_at == settle_at) {
        done(std::move(result));  // scheduled by the append step itself
        return;
      }
      store_->ScheduleHeldAsync(
          key, settle_at, snapshot.updates.size(),
          [scheduled, result](absl::Status status) { scheduled(status, result); });
      return;
    }
    case Decision::Kind::kFinal:
      break;
  }
  std::string serialized = SerializeFinished(decision.finished);
  // Recorded unless another report or replica settled the call first, and then still due
  // (lease) until Published(): a replica that dies before Kafka took the event leaves it to
  // another.
  store_->SettleAsync(key, serialized, options_.finished_ttl, now + options_.due_lease,
                      [done, finished = std::move(decision.finished)](
                          absl::StatusOr<std::optional<std::string>> earlier) mutable {
                        if (!earlier.ok()) {
                          done(absl::UnavailableError(earlier.status().message()));
                          return;
                        }
                        if (*earlier) {
                          if (auto parsed = ParseFinished(**earlier)) {
                            done(Result{.finished = std::move(*parsed), .repeated = true});
                            return;
                          }
                        }
                        done(Result{.finished = std::move(finished)});
                      });
}

std::optional<FinishedCall> CallAssembler::ApplyAlone(const CallUpdate& update,
                                                      Clock::time_point now) {
  if (!IsFinal(update.state) && !update.dial_result) {
    return std::nullopt;
  }
  Decision decision = Decide({update}, /*settle_over=*/true, /*quiet_over=*/true, now);
  if (decision.kind != Decision::Kind::kFinal) {
    return std::nullopt;
  }
  return std::move(decision.finished);
}

void CallAssembler::Published(const FinishedCall& call) {
  if (call.call.recording_only()) {
    // A recording's own event: nothing of it is scheduled, and its acknowledgement says
    // nothing of the call's (taking the call off the schedule here would answer the call's
    // retries as published, and leave an open call without its expiry).
    return;
  }
  const std::string provider = ProviderOf(call.call);
  // Not waited for (Kafka's delivery thread goes on): if it is lost, the call comes due once
  // more after the lease and is published again under the same event id.
  store_->UnscheduleAsync(Key(provider, call.call.provider_call_id()), [](absl::Status) {});
}

std::optional<FinishedCall> CallAssembler::Settled(const std::string& provider,
                                                   const std::string& provider_call_id) {
  auto snapshot = store_->Read(Key(provider, provider_call_id));
  if (!snapshot.ok() || !snapshot->settled) {
    return std::nullopt;
  }
  return ParseFinished(*snapshot->settled);
}

std::optional<FinishedCall> CallAssembler::Abandon(const std::string& provider,
                                                   const std::string& provider_call_id,
                                                   Clock::time_point now) {
  const std::string key = Key(provider, provider_call_id);
  auto snapshot = store_->Read(key);
  if (!snapshot.ok() || snapshot->settled || snapshot->updates.empty()) {
    return std::nullopt;
  }
  std::vector<CallUpdate> updates;
  for (const std::string& text : snapshot->updates) {
    if (auto parsed = ParseUpdate(text)) {
      updates.push_back(std::move(*parsed));
    }
  }
  Decision decision = Decide(updates, /*settle_over=*/true, /*quiet_over=*/true, now);
  if (decision.kind != Decision::Kind::kFinal) {
    return std::nullopt;
  }
  decision.finished.call.set_incomplete(true);
  auto earlier =
      SettleAndSchedule(key, SerializeFinished(decision.finished), now + options_.due_lease);
  if (!earlier.ok() || *earlier) {
    return std::nullopt;
  }
  return std::move(decision.finished);
}

absl::StatusOr<std::optional<std::string>> CallAssembler::SettleAndSchedule(
    const std::string& key, const std::string& finished, Clock::time_point due) {
  std::promise<absl::StatusOr<std::optional<std::string>>> settled;
  std::future<absl::StatusOr<std::optional<std::string>>> earlier = settled.get_future();
  store_->SettleAsync(key, finished, options_.finished_ttl, due,
                      [&settled](absl::StatusOr<std::optional<std::string>> result) {
                        settled.set_value(std::move(result));
                      });
  return earlier.get();
}

std::vector<FinishedCall> CallAssembler::Due(Clock::time_point now, size_t max) {
  std::vector<FinishedCall> due;
  auto keys = store_->TakeDue(now, options_.due_lease, max);
  if (!keys.ok()) {
    return due;
  }
  for (const std::string& key : *keys) {
    auto snapshot = store_->Read(key);
    if (!snapshot.ok()) {
      continue;  // due again after the lease
    }
    if (snapshot->settled) {
      // Settled, its publication not confirmed within the lease: publish it again (same id).
      if (auto earlier = ParseFinished(*snapshot->settled)) {
        due.push_back(std::move(*earlier));
      } else {
        (void)store_->Unschedule(key);
      }
      continue;
    }
    std::vector<CallUpdate> updates;
    for (const std::string& text : snapshot->updates) {
      if (auto parsed = ParseUpdate(text)) {
        updates.push_back(std::move(*parsed));
      }
    }
    Decision decision = Decide(updates, /*settle_over=*/true, /*quiet_over=*/true, now);
    if (decision.kind != Decision::Kind::kFinal) {
      // Settled meanwhile, or a report taken since: it stays. Or nothing of the call came: it
      // is dropped (its reports expire with the call's other keys), and counted only when it
      // did leave the schedule.
      const bool nothing =
          !updates.empty() && std::all_of(updates.begin(), updates.end(), SaysNothingOfTheCall);
      auto unscheduled = store_->UnscheduleUnsettled(key, snapshot->updates.size());
      if (unscheduled.ok() && *unscheduled && nothing) {
        ++dropped_without_call_report_;
      }
      continue;
    }
    auto earlier =
        SettleAndSchedule(key, SerializeFinished(decision.finished), now + options_.due_lease);
    if (!earlier.ok()) {
      continue;
    }
    if (*earlier) {
      if (auto parsed = ParseFinished(**earlier)) {
        due.push_back(std::move(*parsed));
      }
      continue;
    }
    due.push_back(std::move(decision.finished));
  }
  return due;
}

namespace {

// A recording's own event, its id and time; the call's outcome and numbers are the caller's to
// fill in (the settled call, when there is one).
FinishedCall RecordingEvent(std::string_view provider, std::string_view provider_call_id,
                            std::string_view recording_id, Clock::time_point now) {
  FinishedCall recording;
  std::string id;
  ingest::AppendPart(&id, provider);
  ingest::AppendPart(&id, provider_call_id);
  ingest::AppendPart(&id, "recording");
  ingest::AppendPart(&id, recording_id);
  recording.event_id = ingest::EventId("call", id);
  recording.occurred = now;
  return recording;
}

// The recording's fields of its own event, over the call's (settled) ones or none.
void MarkRecording(CallEvent* call, const std::string& call_id, const std::string& provider_call_id,
                   const std::string& recording_url, bool carried) {
  call->set_call_id(call_id);
  call->set_provider_call_id(provider_call_id);
  call->set_recording_url(recording_url);
  call->clear_recording_urls();
  call->add_recording_urls(recording_url);
  call->set_recording_only(true);
  call->set_carried_by_call(carried);
}

}  // namespace

FinishedCall CallAssembler::RecordingOfSettled(const FinishedCall& settled,
                                               const std::string& recording_id,
                                               const std::string& recording_url,
                                               Clock::time_point now) {
  const CallEvent& call = settled.call;
  FinishedCall recording =
      RecordingEvent(ProviderOf(call), call.provider_call_id(), recording_id, now);
  recording.call = call;
  recording.counterpart_e164 = settled.counterpart_e164;
  MarkRecording(&recording.call, call.call_id(), call.provider_call_id(), recording_url,
                /*carried=*/false);
  return recording;
}

void CallAssembler::RecordingAsync(const std::string& provider, const std::string& provider_call_id,
                                   const std::string& recording_id,
                                   const std::string& recording_url, Clock::time_point now,
                                   RecordingDone done) {
  FinishedCall recording = RecordingEvent(provider, provider_call_id, recording_id, now);
  // Twilio may post the recording before the call's last status callback: a call not settled
  // yet takes it as an update of its own, so that its event carries the recording too
  // (crm-core may read this recording's own event before the call's and attaches it to the
  // call). A settled call takes nothing more: the append step answers its settlement instead,
  // whose outcome and numbers this event then carries (keyed by the call's number, so after
  // the call's event).
  CallUpdate early;
  early.provider = provider;
  early.provider_call_id = provider_call_id;
  early.recording_url = recording_url;
  early.recording = true;
  early.received = now;
  store_->AppendAsync(
      Key(provider, provider_call_id), SerializeUpdate(early), options_.finished_ttl,
      options_.max_updates_per_call, std::nullopt,
      [recording = std::move(recording), call_id = absl::StrCat(provider, ":", provider_call_id),
       provider_call_id, recording_url,
       done = std::move(done)](absl::StatusOr<CallStore::Snapshot> snapshot) mutable {
        if (!snapshot.ok()) {
          done(absl::UnavailableError(snapshot.status().message()));
          return;
        }
        if (snapshot->settled) {
          if (auto settled = ParseFinished(*snapshot->settled)) {
            recording.call = std::move(settled->call);
          }
        }
        // Kept with the call's reports (not settled, room left): the call's event carries it.
        const bool carried = !snapshot->settled && snapshot->appended;
        MarkRecording(&recording.call, call_id, provider_call_id, recording_url, carried);
        done(std::move(recording));
      });
}

void CallAssembler::AdmitLateRecordingAsync(
    const FinishedCall& recording,
    std::function<void(absl::StatusOr<CallStore::LateRecording>)> done) {
  store_->AdmitLateRecordingAsync(
      Key(ProviderOf(recording.call), recording.call.provider_call_id()), recording.event_id,
      options_.max_late_recordings, options_.finished_ttl,
      [done = std::move(done)](absl::StatusOr<CallStore::LateRecording> admitted) {
        if (!admitted.ok()) {
          done(absl::UnavailableError(admitted.status().message()));
          return;
        }
        done(admitted);
      });
}

absl::StatusOr<FinishedCall> CallAssembler::Recording(const std::string& provider,
                                                      const std::string& provider_call_id,
                                                      const std::string& recording_id,
                                                      const std::string& recording_url,
                                                      Clock::time_point now) {
  std::promise<absl::StatusOr<FinishedCall>> promise;
  std::future<absl::StatusOr<FinishedCall>> future = promise.get_future();
  RecordingAsync(provider, provider_call_id, recording_id, recording_url, now,
                 [&promise](absl::StatusOr<FinishedCall> recording) {
                   promise.set_value(std::move(recording));
                 });
  return future.get();
}

size_t CallAssembler::open_calls() const {
  auto count = store_->OpenCalls();
  return count.ok() ? *count : 0;
}

CallAssembler::OpenCallsSeen CallAssembler::open_calls_seen() const {
  std::lock_guard lock(seen_->mutex);
  return seen_->seen;
}

void CallAssembler::RefreshOpenCalls() {
  {
    std::lock_guard lock(seen_->mutex);
    if (seen_->asking) {
      return;
    }
    seen_->asking = true;
  }
  store_->ReadDueAsync([seen = seen_](absl::StatusOr<CallStore::DueState> due) {
    std::lock_guard lock(seen->mutex);
    seen->asking = false;
    if (due.ok()) {
      seen->seen = {.count = due->scheduled,
                    .earliest_due = due->earliest,
                    .at = std::chrono::steady_clock::now()};
    }
  });
}

ingest::EventBuilder::Built BuildEvent(const FinishedCall& finished, std::string_view region,
                                       Clock::time_point received,
                                       const std::optional<std::string>& traceparent) {
  const CallEvent& call = finished.call;
  std::string provider = call.call_id().substr(0, call.call_id().find(':'));
  ingest::EventBuilder builder("telephony-ingest", provider, "call");
  builder.Reference(call.line())
      .Times(finished.occurred, received)
      .Traceparent(traceparent)
      .EventId(finished.event_id);
  std::string counterpart =
      call.direction() == CallEvent::OUTBOUND ? call.to_number() : call.from_number();
  std::optional<std::string> phone;
  if (!call.anonymous()) {
    phone = finished.counterpart_e164.empty() ? CallerPhone(counterpart, region)
                                              : std::optional(finished.counterpart_e164);
  }
  if (phone) {
    events::v1::Identity* identity = builder.event().add_identities();
    identity->set_kind(events::v1::Identity::PHONE);
    identity->set_value(*phone);
  }
  // Without a phone (withheld, an extension, a SIP user, an invalid number) the call has no
  // identity: crm-core lists it among the unidentified calls, never on somebody's record.
  *builder.event().mutable_call() = call;
  ingest::EventBuilder::Built built = std::move(builder).Draft();
  if (built.key.empty()) {
    built.key = call.call_id();
  }
  return built;
}

}  // namespace leadflow::telephony
