#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
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
  /// The counterpart's number in E.164 as releases before 2026-12-02 normalised it when they
  /// read a generic report, kept in the stored update (an older replica requires the field).
  /// No report sets it now: BuildEvent normalises the call's number once, for every provider.
  std::string counterpart_e164;
  /// Twilio's <Dial> action: its state is the call's outcome whatever the parent call's own
  /// status says (the parent is always answered by Twilio itself).
  bool dial_result = false;
  /// The <Dial> action's leg (DialCallSid): a call with several <Dial>s (a transfer) has one
  /// action per leg; a retry of one action names the same leg.
  std::string dial_leg;
  /// A <Dial> action whose own CallStatus says the parent call is over (the caller hung up
  /// during the <Dial>): no other <Dial> follows it.
  bool parent_over = false;
  /// An unanswered outcome that a later answer report may still overturn (the generic API,
  /// whose senders post the states of a call in any order): the call settles on it only after
  /// CallAssembler::Options::settle_window without an answer report.
  bool uncertain = false;
  /// Twilio's parent "completed" of an inbound call: answered by Twilio itself, so the call's
  /// real outcome is a <Dial> action's if one comes within the settle window.
  bool awaits_dial = false;
  /// When this report reached the service (set by CallAssembler::Apply): the settle window
  /// runs from the first settling report's arrival, never extended by a retry of it.
  std::optional<Clock::time_point> received;
  /// A recording callback that came before its call was settled: only its recording_url is
  /// folded into the call's event (no state of its own).
  bool recording = false;
  /// Twilio: a leg a <Dial> created (Direction outbound-dial, reported under its ParentCallSid;
  /// its own CallSid in dial_leg). For an outbound parent (click-to-call: Twilio calls the
  /// agent, then <Dial>s the customer) the leg is the customer's: its To is the call's callee
  /// and its final status the <Dial>'s outcome. For an inbound parent it changes nothing (the
  /// parent's <Dial> action says it all).
  bool child_leg = false;
  /// Answering machine detection found a machine or a fax (Twilio's AnsweredBy machine_*, fax),
  /// on whichever report of the call said so: the call is a voicemail, whatever its end says.
  bool machine = false;
};

/// The text an update is kept as in a CallStore (JSON), and back; std::nullopt when unreadable.
std::string SerializeUpdate(const CallUpdate& update);
/// In the kept text of a recording's own update (CallUpdate::recording), and in no other: JSON
/// escapes a quote inside a string, so no value can hold it. The stores read it to tell a
/// recording, which decides nothing, from a report (ScheduleHeld).
inline constexpr std::string_view kStoredRecordingMark = "\"recd\":true";
/// SerializeUpdate's text built through nlohmann::json (what SerializeUpdate writes directly
/// when every text is ASCII, byte for byte; it also validates and replaces UTF-8).
std::string SerializeUpdateJson(const CallUpdate& update);
std::optional<CallUpdate> ParseUpdate(std::string_view text);
/// ParseUpdate by nlohmann alone: the reference its faster reading falls back to.
std::optional<CallUpdate> ParseUpdateJson(std::string_view text);
/// ParseUpdate's faster reading alone (simdjson), for a text whose every member has the kind
/// the stored form gives it; std::nullopt wherever nlohmann's reading could differ or refuse
/// (another kind, a number past the field's range, not JSON to simdjson): ParseUpdateJson
/// decides those.
std::optional<CallUpdate> ParseUpdateFast(std::string_view text);
/// ParseUpdate(serialized), `serialized` being SerializeUpdate(update), without parsing when the
/// result is known: `update` with its times in whole milliseconds, when all its text is ASCII
/// (the JSON replaces invalid UTF-8, so other text takes the round trip).
std::optional<CallUpdate> AsStored(const CallUpdate& update, std::string_view serialized);

/// A call once its outcome is known, every update folded in.
struct FinishedCall {
  CallEvent call;
  std::string event_id;
  /// See CallUpdate::counterpart_e164; empty: BuildEvent normalises the number itself.
  std::string counterpart_e164;
  Clock::time_point occurred;  // when it ended (or the last update, when incomplete)
  /// Read back from the store, settled earlier: publishing it is a re-publication (a
  /// provider's retry, a parked request, a publication not confirmed in time). Not stored.
  bool republication = false;
};

/// The text a settled call is kept as in a CallStore (JSON), and back.
std::string SerializeFinished(const FinishedCall& finished);
/// SerializeFinished's text built through nlohmann::json (what SerializeFinished writes directly
/// when its texts are ASCII, byte for byte).
std::string SerializeFinishedJson(const FinishedCall& finished);
/// Appends `text` as a JSON string, escaped as nlohmann::json's dump does (the stored formats
/// and the answers written without a tree); false, nothing appended, when it holds a byte past
/// ASCII, which nlohmann checks and replaces when it is not UTF-8.
bool AppendAsciiJson(std::string* out, std::string_view text);
std::optional<FinishedCall> ParseFinished(std::string_view text);
/// ParseFinished by nlohmann alone: the reference its faster reading falls back to.
std::optional<FinishedCall> ParseFinishedJson(std::string_view text);

/// Where the state of calls lives: the updates of each open call (in arrival order), the
/// settlement of each finished call, and the calls due for a decision (quiet too long, or
/// settling). MemoryCallStore keeps it in the process (one replica, the AMI client);
/// RedisCallStore shares it between the replicas behind one load balancer, so that the
/// callbacks of one call may reach any of them. Keys are "<provider>:<provider call id>"-like
/// strings built by the assembler. Thread-safe.
class CallStore {
 public:
  struct Snapshot {
    std::vector<std::string> updates;    // serialized CallUpdates, oldest first
    std::optional<std::string> settled;  // serialized FinishedCall
    /// Calls scheduled (open or settling) when the snapshot was taken; AppendAsync may leave it
    /// 0 for a call settled or decided (only an open call's decision reads it).
    size_t open_calls = 0;
    /// The call is settled and its event was acknowledged by Kafka: Unschedule, which only a
    /// confirmed publication calls for a settled call, took it off the schedule. (A settled call
    /// is scheduled in the same step that records it, and Forget leaves a settled call alone.)
    bool published = false;
    /// Append: false when the update was not kept, because the call is settled (`settled`
    /// says so) or already holds `max_updates` updates.
    bool appended = true;
    /// AppendAsync: the update was the call's first and its `if_first` settlement was recorded
    /// in the same step (`updates` is then left empty).
    bool decided = false;
    /// AppendAsync: the update was the call's first, `if_first` had no settlement, and the
    /// update was kept and the call scheduled at `if_first->due` in the same step.
    bool scheduled = false;
    /// AppendAsync: the update was the call's first, and `if_first->max_open_calls` calls were
    /// scheduled already: nothing was kept or scheduled (`appended` is false).
    bool refused = false;
    /// AppendAsync: the update was kept after others, and the call's expiry was pushed to
    /// `if_first->open_expiry` in the same step.
    bool refreshed = false;
  };
  /// What AppendAsync does when the update turns out to be the call's first: the decision on
  /// that update alone, which is then the decision over the whole call.
  struct FirstDecision {
    /// Serialized FinishedCall: recorded as the call's settlement instead of the update. Empty:
    /// the call stays open (or settling), the update is kept.
    std::string finished;
    /// When the call is due: until its publication is confirmed (Unschedule) for a settlement;
    /// its expiry, or the end of its settle window, for an open call.
    Clock::time_point due;
    /// Without a settlement: a new call is refused (Snapshot::refused) when this many calls are
    /// scheduled already; none: no bound.
    std::optional<size_t> max_open_calls;
    /// When the update is not the call's first: the call's expiry pushed to `open_expiry` in
    /// the same step if the call is scheduled later than `open_above` (only an open call's
    /// expiry is: a settle deadline or a lease is nearer). A store may leave it undone
    /// (Snapshot::refreshed false); the caller then schedules the call itself.
    std::optional<Clock::time_point> open_expiry;
    Clock::time_point open_above;
  };
  using SnapshotDone = std::function<void(absl::StatusOr<Snapshot>)>;
  using SettleDone = std::function<void(absl::StatusOr<std::optional<std::string>>)>;
  using StatusDone = std::function<void(absl::Status)>;
  virtual ~CallStore() = default;
  /// Appends `update` to the call's updates and returns the call's state after it, in one step:
  /// only while the call is not settled and holds fewer than `max_updates` updates (a replayed
  /// or runaway call never grows the list past that). The list expires `ttl` after its first
  /// update: later ones do not push it back.
  virtual absl::StatusOr<Snapshot> Append(const std::string& key, const std::string& update,
                                          std::chrono::seconds ttl, size_t max_updates) = 0;
  virtual absl::StatusOr<Snapshot> Read(const std::string& key) = 0;
  /// Records `finished` as the call's settlement (kept `ttl`) unless one is recorded already;
  /// gives the earlier one, or std::nullopt when `finished` was recorded.
  virtual absl::StatusOr<std::optional<std::string>> Settle(const std::string& key,
                                                            const std::string& finished,
                                                            std::chrono::seconds ttl) = 0;
  /// (Re)schedules the call for a decision at `due`; Unschedule takes it off (for a settled
  /// call: its publication was confirmed, Snapshot::published); Forget drops the updates and
  /// schedule of a call not settled (a new call refused), and leaves a settled one as it is.
  virtual absl::Status Schedule(const std::string& key, Clock::time_point due) = 0;
  /// Schedule for a decision taken over the call's first `held` updates, in one step with the
  /// check that the call is not settled and took no report since (it holds `held` updates, or
  /// more of which the later ones are all recordings: kStoredRecordingMark). Otherwise it is
  /// left as it is (false): a report appended since read this one's update too and schedules
  /// the call by its own decision, and a settled call stays due until its publication is
  /// confirmed. Two replicas' decisions on one call thus never leave the older one's time (an
  /// open call's expiry pushing back a settle deadline set since). A recording decides and
  /// schedules nothing, so one appended since does not count.
  virtual absl::StatusOr<bool> ScheduleHeld(const std::string& key, Clock::time_point due,
                                            size_t held) = 0;
  virtual absl::Status Unschedule(const std::string& key) = 0;
  /// Unschedule for a call found with nothing to decide over its first `held` updates: in one
  /// step with the checks, so that a call settled meanwhile stays scheduled until its
  /// publication is confirmed, and one that took a report since (whose schedule may have come
  /// before this; recordings do not count, as for ScheduleHeld) stays scheduled for it.
  /// Answers whether it took the call off the schedule.
  virtual absl::StatusOr<bool> UnscheduleUnsettled(const std::string& key, size_t held) = 0;
  virtual absl::Status Forget(const std::string& key) = 0;
  /// At most `max` calls due at `now`, each rescheduled to now + `lease` in the same step, so
  /// that another replica takes it only if this one did not finish it in time.
  virtual absl::StatusOr<std::vector<std::string>> TakeDue(Clock::time_point now,
                                                           std::chrono::seconds lease,
                                                           size_t max) = 0;
  /// Calls scheduled (open or settling), for the telephony_open_calls gauge.
  virtual absl::StatusOr<size_t> OpenCalls() = 0;
  /// The calls scheduled and the earliest time one of them is due (none when none is
  /// scheduled), in one step: for the gauges.
  struct DueState {
    size_t scheduled = 0;
    std::optional<Clock::time_point> earliest;
  };
  virtual absl::StatusOr<DueState> ReadDue() = 0;
  /// What AdmitLateRecording decided for a recording of a settled call.
  enum class LateRecording {
    kAdmitted,  // one of the call's late recordings from now on: publish it
    kRepeated,  // admitted before (a retry of its report): publish it again, no slot taken
    kCapped,    // the call has `max` late recordings already: publish nothing
  };
  /// A recording that a report brings after its call `key` was settled, published as its own
  /// event (CallAssembler::RecordingOfSettled): in one step, `recording` (its event id) is
  /// kRepeated when the call's late recordings hold it, else kAdmitted and recorded among them
  /// while they are fewer than `max`, else kCapped. Counted over every replica sharing the store;
  /// kept as long as the call's settlement (`ttl` when that is gone).
  virtual absl::StatusOr<LateRecording> AdmitLateRecording(const std::string& key,
                                                           const std::string& recording, size_t max,
                                                           std::chrono::seconds ttl) = 0;

  // The request path's forms: `done` runs once, on the calling thread before the call returns
  // or later on another one; it must not block, nor call the synchronous methods above. The
  // defaults run the synchronous methods on the calling thread (MemoryCallStore);
  // RedisCallStore sends each in one round trip without holding the caller's thread.

  /// Append; when the update is the call's first and `if_first` is given, also records
  /// `if_first->finished` as the call's settlement (Settle) and schedules the call at
  /// `if_first->due`, in the same step (Snapshot::decided); without a settlement, keeps the
  /// update and schedules the call at `if_first->due` in the same step (Snapshot::scheduled;
  /// Snapshot::open_calls counts the calls scheduled before it), unless
  /// `if_first->max_open_calls` calls are scheduled already (Snapshot::refused: nothing kept).
  /// For a later update, may push an open call's expiry (FirstDecision::open_expiry,
  /// Snapshot::refreshed); this default does not.
  virtual void AppendAsync(const std::string& key, const std::string& update,
                           std::chrono::seconds ttl, size_t max_updates,
                           std::optional<FirstDecision> if_first, SnapshotDone done);
  /// Settle; when `finished` was recorded, also schedules the call at `due` in the same step.
  virtual void SettleAsync(const std::string& key, const std::string& finished,
                           std::chrono::seconds ttl, Clock::time_point due, SettleDone done);
  /// ScheduleHeld; `done` gets its status only (a schedule left undone is not a failure).
  virtual void ScheduleHeldAsync(const std::string& key, Clock::time_point due, size_t held,
                                 StatusDone done);
  virtual void UnscheduleAsync(const std::string& key, StatusDone done);
  virtual void ForgetAsync(const std::string& key, StatusDone done);
  /// ReadDue.
  virtual void ReadDueAsync(std::function<void(absl::StatusOr<DueState>)> done);
  /// AdmitLateRecording.
  virtual void AdmitLateRecordingAsync(const std::string& key, const std::string& recording,
                                       size_t max, std::chrono::seconds ttl,
                                       std::function<void(absl::StatusOr<LateRecording>)> done);
};

/// CallStore in this process. Bounded: at most `max_calls` calls' updates and `max_settled`
/// settlements (the oldest forgotten first).
class MemoryCallStore : public CallStore {
 public:
  MemoryCallStore(size_t max_calls, size_t max_settled);
  absl::StatusOr<Snapshot> Append(const std::string& key, const std::string& update,
                                  std::chrono::seconds ttl, size_t max_updates) override;
  absl::StatusOr<Snapshot> Read(const std::string& key) override;
  absl::StatusOr<std::optional<std::string>> Settle(const std::string& key,
                                                    const std::string& finished,
                                                    std::chrono::seconds ttl) override;
  absl::Status Schedule(const std::string& key, Clock::time_point due) override;
  absl::StatusOr<bool> ScheduleHeld(const std::string& key, Clock::time_point due,
                                    size_t held) override;
  absl::Status Unschedule(const std::string& key) override;
  absl::StatusOr<bool> UnscheduleUnsettled(const std::string& key, size_t held) override;
  absl::Status Forget(const std::string& key) override;
  absl::StatusOr<std::vector<std::string>> TakeDue(Clock::time_point now,
                                                   std::chrono::seconds lease, size_t max) override;
  absl::StatusOr<size_t> OpenCalls() override;
  absl::StatusOr<DueState> ReadDue() override;
  absl::StatusOr<LateRecording> AdmitLateRecording(const std::string& key,
                                                   const std::string& recording, size_t max,
                                                   std::chrono::seconds ttl) override;

 private:
  Snapshot SnapshotLocked(const std::string& key) const;
  /// Whether the call took a report after its first `held` updates (ScheduleHeld), or holds
  /// fewer.
  bool ReportedSinceLocked(const std::string& key, size_t held) const;
  const size_t max_calls_;
  const size_t max_settled_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::string>> updates_;
  std::deque<std::string> updates_order_;
  struct Settlement {
    std::string finished;
    bool published = false;  // Unschedule called since it was recorded
    /// AdmitLateRecording's: the event ids of the recordings admitted after it, at most its
    /// `max`; forgotten with the settlement.
    std::vector<std::string> late_recordings;
  };
  std::unordered_map<std::string, Settlement> settled_;
  std::deque<std::string> settled_order_;
  std::unordered_map<std::string, Clock::time_point> due_;
};

/// Folds the updates of each call (ordered, duplicated or not, arriving at any replica that
/// shares the CallStore) into one event per call, with one event id per call:
/// EventId("call", provider, provider call id) — never the outcome, so that two reports of
/// one call can never become two contradictory events.
/// - ringing/answered are kept and folded into the final state;
/// - the outcome (Decide): a Twilio <Dial> action's state first; else talk time (answered_at,
///   a duration, an "answered" state) makes the call answered — a voicemail state excepted;
///   else the last final state (a lone "ended": missed);
/// - a certain outcome settles the call at once; an uncertain one (CallUpdate::uncertain)
///   settles `settle_window` later unless a deciding report comes first (Due());
/// - the first settlement wins: a provider retrying its callback, or a later final report,
///   gets that FinishedCall back (`repeated`);
/// - a call without any update for `open_ttl` is finished by Due() from what is known
///   (answered, else missed), marked incomplete.
/// Thread-safe.
class CallAssembler {
 public:
  struct Options {
    size_t max_open_calls = 10000;
    size_t max_finished_calls = 10000;
    std::chrono::seconds open_ttl{4 * 3600};
    std::chrono::seconds finished_ttl{24 * 3600};
    /// How long an uncertain outcome waits for a report that decides otherwise.
    std::chrono::milliseconds settle_window{15000};
    /// How long a replica has to publish a call it took from Due() before another may.
    std::chrono::seconds due_lease{60};
    /// How long, after its last report, a call reported leg by leg waits for a leg that rang
    /// and never reported its end, once another leg's unanswered end came
    /// (TELEPHONY_RING_WINDOW_S); then the ends reported stand.
    std::chrono::seconds ring_window{120};
    /// Updates kept per call at most (TELEPHONY_MAX_UPDATES_PER_CALL); past it an intermediate
    /// state is refused (FailedPrecondition) and a final one settles the call over the updates
    /// kept and itself, without waiting for the settle window.
    size_t max_updates_per_call = 64;
    /// Recordings of one settled call published as their own events after it
    /// (TELEPHONY_MAX_LATE_RECORDINGS; crm-core keeps 20 per activity): past it a report
    /// bringing another is answered without its publication.
    size_t max_late_recordings = 20;
  };
  struct Result {
    /// Set when the call is finished (now, or earlier: `repeated`).
    std::optional<FinishedCall> finished;
    bool repeated = false;
    /// `repeated`, and the call's event was acknowledged by Kafka (Snapshot::published): a
    /// retry answered as the original was needs no publication again.
    bool published = false;
    /// The outcome is known but uncertain: it will be published by Due() after the settle
    /// window unless a deciding report comes first.
    std::optional<CallEvent::Outcome> settling;
  };
  /// `store`: where calls live (not owned); null: a MemoryCallStore of the assembler's own.
  explicit CallAssembler(Options options, CallStore* store = nullptr);

  /// ResourceExhausted when an intermediate state would open a call past max_open_calls;
  /// FailedPrecondition when an intermediate state finds the call holding max_updates_per_call
  /// updates; Unavailable when the store failed (nothing recorded: a webhook is answered 503 so
  /// that the provider retries; the AMI client, which cannot replay, decides on this update
  /// alone: ApplyAlone). Waits for the store: not on a thread that runs the store's callbacks.
  absl::StatusOr<Result> Apply(const CallUpdate& update, Clock::time_point now);

  using Done = std::function<void(absl::StatusOr<Result>)>;
  /// Apply without holding the calling thread while the store works (the webhooks' path):
  /// `done` gets what Apply would return, once, maybe on another thread (CallStore's async
  /// forms). A call's first report costs one step of the store (append, then settle or
  /// schedule on the decision over that report alone, together; or refused past
  /// max_open_calls); later ones two (append, then settle or schedule), but one for a report
  /// that leaves an open call open (the step pushes its expiry, FirstDecision::open_expiry),
  /// and with RedisCallStore three for a final one (its deciding step finds the call keeping
  /// reports first).
  void ApplyAsync(const CallUpdate& update, Clock::time_point now, Done done);

  /// The decision on one update alone, without the store (it failed): a final state settles
  /// from what it says, an intermediate one is lost.
  static std::optional<FinishedCall> ApplyAlone(const CallUpdate& update, Clock::time_point now);

  /// Finishes `provider`/`provider_call_id` from what is known (the final record will not come:
  /// e.g. the PBX lost the call while we were disconnected); std::nullopt when not open.
  std::optional<FinishedCall> Abandon(const std::string& provider,
                                      const std::string& provider_call_id, Clock::time_point now);

  /// The calls due at `now`: settling ones whose window passed (settled on their outcome), and
  /// ones without an update for open_ttl (settled from what is known, incomplete), and ones
  /// settled but whose publication was never confirmed (Published() not called within
  /// due_lease). Each comes once per lease; the caller publishes it and calls Published().
  std::vector<FinishedCall> Due(Clock::time_point now, size_t max = 1000);
  /// The old name of Due() for the calls quiet past open_ttl.
  std::vector<FinishedCall> Expire(Clock::time_point now) { return Due(now); }
  /// Kafka took the call's event: it is no longer due.
  void Published(const FinishedCall& call);
  /// The call's settlement as the store holds it (by any replica); std::nullopt while it is
  /// open or settling, or when the store failed (asked again later).
  std::optional<FinishedCall> Settled(const std::string& provider,
                                      const std::string& provider_call_id);

  /// The event for a recording (Twilio's recording callback): recording_only, the call's
  /// outcome and numbers when it is settled, its own event id (provider, call id, recording
  /// id). A call not settled yet also takes the recording into its own event (one step of the
  /// store: appended unless settled, the settlement read in the same step). Unavailable when
  /// the store failed (nothing recorded: the webhook is answered 503 and retried).
  using RecordingDone = std::function<void(absl::StatusOr<FinishedCall>)>;
  void RecordingAsync(const std::string& provider, const std::string& provider_call_id,
                      const std::string& recording_id, const std::string& recording_url,
                      Clock::time_point now, RecordingDone done);
  /// The event for a recording of a call already settled (`settled`, as the store holds it)
  /// that a report brings after the call was published — a PBX posting the file once it is
  /// written, Twilio's <Dial record> action after the parent's "completed": RecordingAsync's
  /// event for a settled call, without a step of the store. Its event id is the recording's
  /// (`recording_id`; the URL when the provider gives no id), so a retry of the report is
  /// applied once.
  static FinishedCall RecordingOfSettled(const FinishedCall& settled,
                                         const std::string& recording_id,
                                         const std::string& recording_url, Clock::time_point now);
  /// Whether `recording` (RecordingOfSettled's event) may be published: CallStore::
  /// AdmitLateRecording over its call, at most Options::max_late_recordings per call. `done`
  /// gets Unavailable when the store failed (the webhook is answered 503 and retried).
  void AdmitLateRecordingAsync(const FinishedCall& recording,
                               std::function<void(absl::StatusOr<CallStore::LateRecording>)> done);
  /// RecordingAsync, waited for: not on a thread that runs the store's callbacks.
  absl::StatusOr<FinishedCall> Recording(const std::string& provider,
                                         const std::string& provider_call_id,
                                         const std::string& recording_id,
                                         const std::string& recording_url, Clock::time_point now);

  /// Calls scheduled (open or settling), read from the store now: waits for it.
  size_t open_calls() const;
  /// The calls scheduled as last read from the store by RefreshOpenCalls(), the earliest time
  /// one of them is due, and when they were read (the assembler's creation until a first read
  /// answers): what a metrics scrape shows without waiting for the store.
  struct OpenCallsSeen {
    size_t count = 0;
    std::optional<Clock::time_point> earliest_due;
    std::chrono::steady_clock::time_point at;
  };
  OpenCallsSeen open_calls_seen() const;
  /// Asks the store for the number of open calls without waiting for its answer, unless a
  /// question is already out (one at a time, however often it is called); the answer updates
  /// open_calls_seen(). A failed or slow store leaves the last value, which ages.
  void RefreshOpenCalls();
  /// Calls Due() dropped since the last call of this, timed out with only reports that say
  /// nothing of the call itself (recordings, a <Dial>'s legs, Twilio's answering machine
  /// verdicts): nothing to publish.
  uint64_t TakeDroppedWithoutCallReport() { return dropped_without_call_report_.exchange(0); }

 private:
  /// ApplyAsync once the store answered the append; `scheduled_at`: when the append step itself
  /// scheduled the call (its first update, Snapshot::scheduled) or pushed its expiry to
  /// (Snapshot::refreshed).
  void AfterAppend(const std::string& key, const CallUpdate& update, Clock::time_point now,
                   CallStore::Snapshot snapshot, std::optional<Clock::time_point> scheduled_at,
                   Done done);
  /// CallStore::SettleAsync waited for: `finished` recorded and the call scheduled at `due` in
  /// one step (a settled call is never off the schedule before its publication is confirmed),
  /// or the earlier settlement. Not on a thread that runs the store's callbacks.
  absl::StatusOr<std::optional<std::string>> SettleAndSchedule(const std::string& key,
                                                               const std::string& finished,
                                                               Clock::time_point due);

  std::unique_ptr<CallStore> own_store_;
  const Options options_;
  CallStore* store_;
  /// open_calls_seen(), shared with the store's callback (which may outlive the assembler).
  struct SeenState {
    std::mutex mutex;
    OpenCallsSeen seen;
    bool asking = false;
  };
  std::shared_ptr<SeenState> seen_ = std::make_shared<SeenState>();
  std::atomic<uint64_t> dropped_without_call_report_{0};
};

/// The decision over a call's updates (pure). `settle_over`: an uncertain outcome stands;
/// `quiet_over`: a call without a final state is settled from what is known, incomplete.
struct Decision {
  enum class Kind { kOpen, kSettling, kFinal };
  Kind kind = Kind::kOpen;
  FinishedCall finished;  // kSettling, kFinal
  /// kOpen: a leg of a ring group reported its unanswered end while another still rings; the
  /// call's last report came then (the ring window runs from it).
  std::optional<Clock::time_point> legs_ringing_since;
};
Decision Decide(const std::vector<CallUpdate>& updates, bool settle_over, bool quiet_over,
                Clock::time_point now);

/// The event id of a call: one per call, whatever its outcome.
std::string CallEventId(std::string_view provider, std::string_view provider_call_id);

/// What a caller id names once a SIP or tel URI is read: its user part ("sip:201@pbx.local" →
/// "201", "tel:+33612345678;ext=2" → "+33612345678"; "201@pbx" too), surrounding white
/// space removed; any other text as given. A view into `number`.
std::string_view UriUserPart(std::string_view number);

/// An internal extension's number as a PBX gives it: 1 to `max_digits` ASCII digits. A call
/// from one to another is a colleague's call, not a customer's: no input publishes it.
bool IsInternalExtension(std::string_view number, int max_digits);

/// A PBX feature code as an extension dials it: `*` or `#` first, then digits, `*` or `#` (at
/// most 16 characters): `*97` (voicemail), `*8` (pickup), `#72`. The PBX's own services, not a
/// call to anyone: no input publishes it.
bool IsFeatureCode(std::string_view dialled);

/// Whether `a` and `b` are two extensions of one PBX: both plain extensions ("201", "202"), or
/// both a SIP URI's user part on the same host ("sip:201@pbx.local", "sip:202@pbx.local", as
/// SIP PBXs report their phones). A short numeric user on another host (a customer's own PBX,
/// "sip:1234@customer.example") is not ours.
bool ExtensionsOfOnePbx(std::string_view a, std::string_view b, int max_digits);
/// Whether `caller`, an extension, dials a feature code of its own PBX: `201` → `*97`, or
/// `sip:201@pbx.local` → `sip:*97@pbx.local` (the same host).
bool FeatureCodeOfPbx(std::string_view caller, std::string_view dialled, int max_digits);

/// The phone number a caller id names, in E.164, or std::nullopt when it names nobody: withheld
/// (IsAnonymousNumber), all zeros ("0000000000", "+33000000000"), an internal extension
/// ("3010"), a Twilio client ("client:alice") or anything libphonenumber finds invalid. SIP and
/// tel URIs give their user part ("sip:+33612340003@trunk.example.com").
std::optional<std::string> CallerPhone(std::string_view number, std::string_view region);

/// The event to publish for a finished call: counterpart's number (the caller of an inbound
/// call, the callee of an outbound one) as the PHONE identity unless anonymous or not a phone
/// number; Kafka key that number, or the call id without one.
ingest::EventBuilder::Built BuildEvent(const FinishedCall& finished, std::string_view region,
                                       Clock::time_point received,
                                       const std::optional<std::string>& traceparent);

}  // namespace leadflow::telephony
