#include "telephony-ingest/call.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ingest/event_id.h"

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

bool IsAnonymousNumber(std::string_view number) {
  std::string text = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(number.data(), number.size())));
  for (std::string_view scheme : {"sip:", "sips:", "tel:"}) {
    if (text.rfind(scheme, 0) == 0) {
      text.erase(0, scheme.size());
    }
  }
  if (size_t at = text.find('@'); at != std::string::npos) {
    text.erase(at);
  }
  static constexpr std::string_view kWithheld[] = {
      "",        "anonymous",   "restricted", "unknown",   "private",     "withheld",
      "blocked", "unavailable", "+266696687", "266696687", "+7378742833", "7378742833"};
  return std::find(std::begin(kWithheld), std::end(kWithheld), text) != std::end(kWithheld);
}

void CallAssembler::Fold(Open* open, const CallUpdate& update) {
  CallEvent& call = open->call;
  if (call.call_id().empty()) {
    call.set_call_id(absl::StrCat(update.provider, ":", update.provider_call_id));
    call.set_provider_call_id(update.provider_call_id);
  }
  if (call.direction() == CallEvent::DIRECTION_UNSPECIFIED) {
    call.set_direction(update.direction);
  }
  SetIfEmpty(call.mutable_from_number(), update.from);
  SetIfEmpty(call.mutable_to_number(), update.to);
  SetIfEmpty(call.mutable_line(), update.line);
  SetIfGiven(call.mutable_operator_name(), update.operator_name);
  SetIfGiven(call.mutable_extension(), update.extension);
  SetIfGiven(call.mutable_recording_url(), update.recording_url);
  SetIfGiven(call.mutable_provider_status(), update.provider_status);
  SetIfGiven(call.mutable_transferred_to(), update.transferred_to);
  if (update.started_at &&
      (!call.has_started_at() || Seconds(*update.started_at) < call.started_at().seconds())) {
    *call.mutable_started_at() = ingest::ToTimestamp(*update.started_at);
  }
  if (update.answered_at && !call.has_answered_at()) {
    *call.mutable_answered_at() = ingest::ToTimestamp(*update.answered_at);
  }
  if (update.ended_at &&
      (!call.has_ended_at() || Seconds(*update.ended_at) > call.ended_at().seconds())) {
    *call.mutable_ended_at() = ingest::ToTimestamp(*update.ended_at);
  }
  if (update.duration_seconds) {
    call.set_duration_seconds(*update.duration_seconds);
  }
  call.set_attempts(call.attempts() + update.attempts);
  if (open->counterpart_e164.empty()) {
    open->counterpart_e164 = update.counterpart_e164;
  }
  std::string_view state = StateName(update.state);
  if (call.states().empty() || call.states(call.states_size() - 1) != state) {
    call.add_states(std::string(state));
  }
  if (update.state == State::kAnswered || update.answered || update.answered_at ||
      (update.state == State::kEnded && update.duration_seconds.value_or(0) > 0)) {
    open->answered = true;
  }
}

FinishedCall CallAssembler::Finish(Open open, std::optional<State> final_state, bool incomplete,
                                   Clock::time_point now) {
  CallEvent& call = open.call;
  CallEvent::Outcome outcome = open.answered ? CallEvent::ANSWERED : CallEvent::MISSED;
  if (final_state) {
    switch (*final_state) {
      case State::kMissed:
        outcome = CallEvent::MISSED;
        break;
      case State::kVoicemail:
        outcome = CallEvent::VOICEMAIL;
        break;
      case State::kBusy:
        outcome = CallEvent::BUSY;
        break;
      case State::kFailed:
        outcome = CallEvent::FAILED;
        break;
      case State::kCanceled:
        // A caller who hung up before anybody answered is a missed call for the sales team;
        // only our own outbound call given up is "canceled".
        outcome = call.direction() == CallEvent::OUTBOUND ? CallEvent::CANCELED : CallEvent::MISSED;
        break;
      default:
        break;
    }
  }
  call.set_outcome(outcome);
  call.set_incomplete(incomplete);
  if (outcome == CallEvent::ANSWERED) {
    if (!call.has_answered_at() && call.has_ended_at() && call.duration_seconds() > 0) {
      call.mutable_answered_at()->set_seconds(call.ended_at().seconds() - call.duration_seconds());
    }
    if (call.duration_seconds() == 0 && call.has_answered_at() && call.has_ended_at()) {
      call.set_duration_seconds(static_cast<int32_t>(
          std::max<int64_t>(0, call.ended_at().seconds() - call.answered_at().seconds())));
    }
  } else {
    call.set_duration_seconds(0);
  }
  if (!call.has_started_at() && call.has_ended_at()) {
    int64_t back =
        call.has_answered_at() ? call.answered_at().seconds() : call.ended_at().seconds();
    call.mutable_started_at()->set_seconds(back);
  }
  call.set_attempts(std::max(1, call.attempts()));
  std::string counterpart =
      call.direction() == CallEvent::OUTBOUND ? call.to_number() : call.from_number();
  call.set_anonymous(IsAnonymousNumber(counterpart));

  FinishedCall finished;
  std::string provider =
      call.call_id().substr(0, call.call_id().size() - call.provider_call_id().size() - 1);
  std::string id;
  ingest::AppendPart(&id, provider);
  ingest::AppendPart(&id, call.provider_call_id());
  ingest::AppendPart(&id, OutcomeName(outcome));
  finished.event_id = ingest::EventId("call", id);
  finished.occurred = call.has_ended_at() ? FromTimestamp(call.ended_at()) : now;
  finished.counterpart_e164 = std::move(open.counterpart_e164);
  finished.call = std::move(call);
  return finished;
}

void CallAssembler::RememberLocked(const std::string& key, const FinishedCall& call,
                                   Clock::time_point now) {
  while (finished_order_.size() >= options_.max_finished_calls && !finished_order_.empty()) {
    finished_.erase(finished_order_.front().first);
    finished_order_.pop_front();
  }
  if (options_.max_finished_calls == 0) {
    return;
  }
  finished_[key] = call;
  finished_order_.emplace_back(key, now);
}

absl::StatusOr<CallAssembler::Result> CallAssembler::Apply(const CallUpdate& update,
                                                           Clock::time_point now) {
  const std::string key = Key(update.provider, update.provider_call_id);
  std::lock_guard lock(mutex_);
  while (!finished_order_.empty() &&
         finished_order_.front().second + options_.finished_ttl <= now) {
    finished_.erase(finished_order_.front().first);
    finished_order_.pop_front();
  }
  if (auto done = finished_.find(key); done != finished_.end()) {
    return Result{.finished = done->second, .repeated = true};
  }
  auto it = open_.find(key);
  if (!IsFinal(update.state)) {
    if (it == open_.end()) {
      if (open_.size() >= options_.max_open_calls) {
        return absl::ResourceExhaustedError("too many calls in progress");
      }
      it = open_.emplace(key, Open{}).first;
    }
    Fold(&it->second, update);
    it->second.last_update = now;
    return Result{};
  }
  Open open;
  if (it != open_.end()) {
    open = std::move(it->second);
    open_.erase(it);
  }
  Fold(&open, update);
  FinishedCall finished = Finish(std::move(open), update.state, /*incomplete=*/false, now);
  RememberLocked(key, finished, now);
  return Result{.finished = std::move(finished)};
}

std::optional<FinishedCall> CallAssembler::Abandon(const std::string& provider,
                                                   const std::string& provider_call_id,
                                                   Clock::time_point now) {
  const std::string key = Key(provider, provider_call_id);
  std::lock_guard lock(mutex_);
  auto it = open_.find(key);
  if (it == open_.end()) {
    return std::nullopt;
  }
  Open open = std::move(it->second);
  open_.erase(it);
  FinishedCall finished = Finish(std::move(open), std::nullopt, /*incomplete=*/true, now);
  RememberLocked(key, finished, now);
  return finished;
}

std::vector<FinishedCall> CallAssembler::Expire(Clock::time_point now) {
  std::vector<FinishedCall> expired;
  std::lock_guard lock(mutex_);
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->second.last_update + options_.open_ttl <= now) {
      std::string key = it->first;
      Open open = std::move(it->second);
      it = open_.erase(it);
      expired.push_back(Finish(std::move(open), std::nullopt, /*incomplete=*/true, now));
      RememberLocked(key, expired.back(), now);
    } else {
      ++it;
    }
  }
  return expired;
}

FinishedCall CallAssembler::Recording(const std::string& provider,
                                      const std::string& provider_call_id,
                                      const std::string& recording_id,
                                      const std::string& recording_url, Clock::time_point now) {
  FinishedCall recording;
  {
    std::lock_guard lock(mutex_);
    if (auto done = finished_.find(Key(provider, provider_call_id)); done != finished_.end()) {
      recording.call = done->second.call;
    }
  }
  CallEvent& call = recording.call;
  call.set_call_id(absl::StrCat(provider, ":", provider_call_id));
  call.set_provider_call_id(provider_call_id);
  call.set_recording_url(recording_url);
  call.set_recording_only(true);
  std::string id;
  ingest::AppendPart(&id, provider);
  ingest::AppendPart(&id, provider_call_id);
  ingest::AppendPart(&id, "recording");
  ingest::AppendPart(&id, recording_id);
  recording.event_id = ingest::EventId("call", id);
  recording.occurred = now;
  return recording;
}

std::vector<std::string> CallAssembler::OpenCalls(const std::string& provider) const {
  std::vector<std::string> ids;
  std::lock_guard lock(mutex_);
  for (const auto& [key, open] : open_) {
    if (open.call.call_id().rfind(provider + ":", 0) == 0) {
      ids.push_back(open.call.provider_call_id());
    }
  }
  return ids;
}

size_t CallAssembler::open_calls() const {
  std::lock_guard lock(mutex_);
  return open_.size();
}

size_t CallAssembler::finished_calls() const {
  std::lock_guard lock(mutex_);
  return finished_.size();
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
  if (call.anonymous() || IsAnonymousNumber(counterpart)) {
    // Withheld: no identity at all.
  } else if (!finished.counterpart_e164.empty()) {
    events::v1::Identity* identity = builder.event().add_identities();
    identity->set_kind(events::v1::Identity::PHONE);
    identity->set_value(finished.counterpart_e164);
  } else {
    // Not a phone number (a SIP user, an internal extension): published without identity.
    (void)builder.AddPhone(counterpart, region);
  }
  *builder.event().mutable_call() = call;
  ingest::EventBuilder::Built built = std::move(builder).Draft();
  if (built.key.empty()) {
    built.key = call.call_id();
  }
  return built;
}

}  // namespace leadflow::telephony
