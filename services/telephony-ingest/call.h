#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "ingest/event.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace leadflow::telephony {

using Clock = std::chrono::system_clock;
using events::v1::CallEvent;

/// A call's state as a provider reports it. ringing and answered are intermediate; the others
/// settle the outcome (ended: answered if the call was answered, missed otherwise).
enum class State { kRinging, kAnswered, kEnded, kMissed, kVoicemail, kBusy, kFailed, kCanceled };

/// The generic API's spelling ("ringing", "answered", …); std::nullopt for anything else.
std::optional<State> ParseState(std::string_view name);
std::string_view StateName(State state);
std::string_view OutcomeName(CallEvent::Outcome outcome);

/// True for the numbers a caller who withheld theirs shows up as: empty, "anonymous",
/// "restricted", "unknown", "private", "withheld", "unavailable", "blocked" (any case, sip: or
/// tel: prefixes and @domain ignored) and Twilio's +266696687 ("ANONYMOUS" on a keypad).
bool IsAnonymousNumber(std::string_view number);

/// One report about a call: a generic API post, a Twilio callback, what an Asterisk event told.
struct CallUpdate {
  std::string provider;          // "generic", "twilio", "asterisk"
  std::string provider_call_id;  // CallSid, Linkedid, the generic call_id
  State state = State::kRinging;
  CallEvent::Direction direction = CallEvent::DIRECTION_UNSPECIFIED;
  std::string from;
  std::string to;
  std::string line;
  std::string operator_name;
  std::string extension;
  std::string recording_url;
  std::string provider_status;
  std::string transferred_to;
  std::optional<Clock::time_point> started_at;
  std::optional<Clock::time_point> answered_at;
  std::optional<Clock::time_point> ended_at;
  std::optional<int32_t> duration_seconds;
  /// Destinations rung that this update reports (Asterisk: one per DialBegin).
  int32_t attempts = 0;
  /// The call was answered (when the provider says so without giving a time).
  bool answered = false;
  /// The counterpart's number in E.164 when the caller already normalised it (the generic
  /// API validates it), so that the event is not normalised a second time.
  std::string counterpart_e164;
};

/// A call once its outcome is known, every update folded in.
struct FinishedCall {
  CallEvent call;
  std::string event_id;
  /// See CallUpdate::counterpart_e164; empty: BuildEvent normalises the number itself.
  std::string counterpart_e164;
  Clock::time_point occurred;  // when it ended (or the last update, when incomplete)
};

/// Folds the updates of each call (ordered, duplicated or not) into one event per call, as
/// soon as the outcome is known:
/// - ringing/answered are kept (bounded by `max_open_calls`) and folded into the final state;
/// - a final state finishes the call: the event id is EventId("call", provider, provider call
///   id, outcome), so the same call settled the same way always gives the same id;
/// - a finished call is remembered (bounded by `max_finished_calls`, for `finished_ttl`): a
///   provider retrying its callback, or a later final report of the same call (Twilio's parent
///   "completed" after the <Dial> action said no-answer), gets the same FinishedCall back;
/// - a call without any update for `open_ttl` is finished by Expire() from what is known
///   (answered, else missed), marked incomplete.
/// Thread-safe.
class CallAssembler {
 public:
  struct Options {
    size_t max_open_calls = 10000;
    size_t max_finished_calls = 10000;
    std::chrono::seconds open_ttl{4 * 3600};
    std::chrono::seconds finished_ttl{24 * 3600};
  };
  struct Result {
    /// Set when the call is finished (now, or earlier: `repeated`).
    std::optional<FinishedCall> finished;
    bool repeated = false;
  };
  explicit CallAssembler(Options options) : options_(options) {}

  /// ResourceExhausted when an intermediate state would open a call past max_open_calls.
  absl::StatusOr<Result> Apply(const CallUpdate& update, Clock::time_point now);

  /// Finishes `provider`/`provider_call_id` from what is known (the final record will not come:
  /// e.g. the PBX lost the call while we were disconnected); std::nullopt when not open.
  std::optional<FinishedCall> Abandon(const std::string& provider,
                                      const std::string& provider_call_id, Clock::time_point now);

  /// Finishes the calls without an update for open_ttl (see Abandon).
  std::vector<FinishedCall> Expire(Clock::time_point now);

  /// The event for a recording that arrives after its call was settled (Twilio's recording
  /// callback): recording_only, the call's outcome and numbers when it is remembered, its own
  /// event id (provider, call id, recording id).
  FinishedCall Recording(const std::string& provider, const std::string& provider_call_id,
                         const std::string& recording_id, const std::string& recording_url,
                         Clock::time_point now);

  /// Ids of the open calls of `provider`.
  std::vector<std::string> OpenCalls(const std::string& provider) const;

  size_t open_calls() const;
  size_t finished_calls() const;

 private:
  struct Open {
    CallEvent call;
    bool answered = false;
    std::string counterpart_e164;
    Clock::time_point last_update;
  };
  static void Fold(Open* open, const CallUpdate& update);
  FinishedCall Finish(Open open, std::optional<State> final_state, bool incomplete,
                      Clock::time_point now);
  void RememberLocked(const std::string& key, const FinishedCall& call, Clock::time_point now);

  const Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Open> open_;
  std::unordered_map<std::string, FinishedCall> finished_;
  std::deque<std::pair<std::string, Clock::time_point>> finished_order_;
};

/// The event to publish for a finished call: counterpart's number (the caller of an inbound
/// call, the callee of an outbound one) as the PHONE identity unless anonymous or not a phone
/// number; Kafka key that number, or the call id without one.
ingest::EventBuilder::Built BuildEvent(const FinishedCall& finished, std::string_view region,
                                       Clock::time_point received,
                                       const std::optional<std::string>& traceparent);

}  // namespace leadflow::telephony
