#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "redis/pipelined_client.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// The state of calls in Redis, shared by every replica of the service, so that the callbacks
/// of one call may reach any of them (Twilio's status callback at one, its <Dial> action at
/// another). Per call, under the client's key prefix and the format (kFormat, `v2:`):
/// - `call:<key>:u` a list of the serialized updates, in arrival order, appended by one Lua
///   step only while the call is not settled and holds fewer than the cap (two replicas
///   appending at once lose nothing; each folds the whole list); it expires `ttl` after its
///   first update; a call settled by its first update has none (its settlement is all that a
///   later step reads);
/// - `call:<key>:s` the settled FinishedCall, the first decision winning; while the call keeps
///   updates and is not settled, the open mark (`open`, written with the first update and
///   expiring with it), so that a new call's deciding report is a plain SET … NX that the mark
///   or a settlement fails: no script for the most common report;
/// - `call:<key>:r` a set of the event ids of the recordings published after the call settled
///   (AdmitLateRecording), at most the cap, expiring with the settlement;
/// - `calls:due` a sorted set of the calls waiting for a decision or for their publication,
///   scored by when they are due; TakeDue moves the ones it takes one lease ahead in one Lua
///   step, so two replicas never take the same call in the same lease.
/// A call's own keys expire (`ttl`), so Redis holds no call's reports longer than that;
/// `calls:due` holds a call's member until the call is decided and its publication confirmed
/// (and, for a moment, after a retry of a published call: see Decide).
///
/// Every command goes through one pipelined connection (redis::PipelinedClient): the request
/// path's asynchronous forms submit their step and return, and the answer comes on the client's
/// Redis thread as soon as its round trip is read (no hand-off to another thread: what the
/// callbacks do — fold the call, hand its event to Kafka, answer or park the request — never
/// blocks); commands submitted meanwhile from any thread share the next round trip. Each step is
/// one command or one MULTI (the Lua scripts run by EVALSHA, sent again with EVAL when Redis
/// answers NOSCRIPT: after a restart or SCRIPT FLUSH), bounded by the client's timeout; a new
/// call's deciding report that finds the call keeping reports takes a second step, the append.
/// A failed connection answers every command on it Unavailable. The synchronous forms (the ticker,
/// the AMI client) wait for their own step on the same connection, so a step submitted earlier by
/// any thread is done before a later one; never call them from a callback (it runs on the Redis
/// thread, which would wait for itself).
class RedisCallStore : public CallStore {
 public:
  /// `max_pending`: steps submitted and not answered yet at most; past it a step fails at once
  /// (Unavailable), as a failed Redis would.
  explicit RedisCallStore(redis::Options options, size_t max_pending = 10000);
  /// Shutdown().
  ~RedisCallStore() override;

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

  void AppendAsync(const std::string& key, const std::string& update, std::chrono::seconds ttl,
                   size_t max_updates, std::optional<FirstDecision> if_first,
                   SnapshotDone done) override;
  void SettleAsync(const std::string& key, const std::string& finished, std::chrono::seconds ttl,
                   Clock::time_point due, SettleDone done) override;
  void ScheduleHeldAsync(const std::string& key, Clock::time_point due, size_t held,
                         StatusDone done) override;
  void UnscheduleAsync(const std::string& key, StatusDone done) override;
  void ForgetAsync(const std::string& key, StatusDone done) override;
  void ReadDueAsync(std::function<void(absl::StatusOr<DueState>)> done) override;
  void AdmitLateRecordingAsync(const std::string& key, const std::string& recording, size_t max,
                               std::chrono::seconds ttl,
                               std::function<void(absl::StatusOr<LateRecording>)> done) override;

  /// Answers every step submitted (Redis's replies, or Unavailable if it is down) and runs
  /// their callbacks, then stops; later steps fail at once. Before destroying what the
  /// callbacks use. Idempotent.
  void Shutdown() { client_.Shutdown(); }
  /// Steps submitted and not answered yet (telephony_redis_pending).
  size_t pending() const { return client_.pending(); }
  /// Confirmed publications waiting to be taken off the due set in the next round trip
  /// (telephony_redis_unschedules_waiting); bounded by the publications in flight.
  size_t unschedules_waiting() const;

  /// The format of the keys below the prefix: a build that changes what they hold changes it,
  /// so that replicas of two builds sharing a Redis during a rollout never misread each other's
  /// calls (each side then sees only its own).
  static constexpr char kFormat[] = "v2:";

  /// A Lua script and its SHA-1 (what EVALSHA names it by).
  struct Script {
    explicit Script(std::string text);
    std::string text;
    std::string sha1;
  };

 private:
  using RepliesDone = std::function<void(absl::StatusOr<std::vector<redis::Reply>>)>;
  using ReplyDone = std::function<void(absl::StatusOr<redis::Reply>)>;
  /// A new call's deciding report (AppendAsync with a settlement): plain commands, the append
  /// step only when the call keeps reports.
  void Decide(const std::string& key, const std::string& update, std::chrono::seconds ttl,
              size_t max_updates, FirstDecision decision, SnapshotDone done);
  /// The append step (AppendScript).
  void AppendStep(const std::string& key, const std::string& update, std::chrono::seconds ttl,
                  size_t max_updates, std::optional<FirstDecision> if_first, SnapshotDone done);
  std::string Updates(const std::string& key) const;
  std::string Settled(const std::string& key) const;
  std::string LateRecordings(const std::string& key) const;
  /// `commands` in one round trip; a Redis error reply fails the whole step (Unavailable).
  void Submit(std::vector<redis::Command> commands, RepliesDone done);
  absl::StatusOr<std::vector<redis::Reply>> Wait(std::vector<redis::Command> commands);
  /// EVALSHA of `script` over `keys_and_args` (numkeys first), EVAL when Redis lacks it.
  void Eval(const Script& script, std::vector<std::string> keys_and_args, ReplyDone done);
  absl::StatusOr<redis::Reply> WaitEval(const Script& script,
                                        std::vector<std::string> keys_and_args);

  struct Unscheduling {
    std::string key;
    StatusDone done;
  };
  // Confirmed publications waiting for the next round trip (UnscheduleAsync): at most one
  // submission is queued for them, so they are bounded by the publications in flight.
  mutable std::mutex unscheduling_mutex_;
  std::vector<Unscheduling> unscheduling_;
  bool unscheduling_submitted_ = false;

  redis::PipelinedClient client_;
  const std::string prefix_;
  const std::string due_;
};

}  // namespace leadflow::telephony
