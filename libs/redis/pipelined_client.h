#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "redis/client.h"

namespace leadflow::redis {

/// Asynchronous Redis with automatic pipelining: commands submitted from any thread while a
/// round trip is under way all go together in the next one, so N concurrent requests cost one
/// write and one read instead of N blocking round trips, and no caller's thread ever waits on
/// Redis. Replies come back to each submitter's callback on one of the client's
/// callback threads (`callback_threads` of them), so that what callers do next is spread over
/// cores instead of queueing behind the Redis thread; with `callback_threads` 0 they run on the
/// Redis thread itself as soon as their round trip is read, before the next one is sent (no
/// hand-off, no wake-up of another thread: for callbacks that do little). Callbacks must not
/// block, and must never wait for another submission (on the Redis thread that would wait
/// forever); they may submit.
class PipelinedClient {
 public:
  using Done = std::function<void(absl::StatusOr<std::vector<Reply>>)>;
  /// A Done that also gets back the commands it submitted (moved, not copied), for a caller
  /// that may have to send them again in another form (EVALSHA answered NOSCRIPT → EVAL).
  using DoneKeeping =
      std::function<void(absl::StatusOr<std::vector<Reply>>, std::vector<Command> commands)>;

  /// `max_pending`: submissions not yet answered (queued, on the wire, or waiting for a
  /// callback thread) beyond this fail at once with ResourceExhausted. Callers hold request
  /// state in their callbacks, so this bounds memory as well as latency. `callback_threads` 0:
  /// callbacks run on the Redis thread (see above).
  explicit PipelinedClient(Options options, int callback_threads = 2, size_t max_pending = 10000);
  /// Shutdown(), if not done yet.
  ~PipelinedClient();
  PipelinedClient(const PipelinedClient&) = delete;
  PipelinedClient& operator=(const PipelinedClient&) = delete;

  /// `done` gets one reply per command (a Redis error is a kError reply), or Unavailable when
  /// the connection failed.
  void Submit(std::vector<Command> commands, Done done);
  /// As Submit, with the commands built on the Redis thread just before they are sent: what
  /// callers gather while the submission waits (the keys of many confirmations) goes in one
  /// command. `build` must not block; it may return no command (`done` then gets no reply, or
  /// Unavailable when the round trip it was sent in failed).
  void SubmitBuilt(std::function<std::vector<Command>()> build, Done done);
  /// As Submit, `done` getting the commands back.
  void SubmitKeeping(std::vector<Command> commands, DoneKeeping done);

  /// Runs what is queued (failing it if Redis is down) and every callback, then stops; later
  /// submissions fail at once with ResourceExhausted. The object stays usable for pending()
  /// (0 from then on), so a metrics gauge reading it need not be torn down first: stop the
  /// client at shutdown, destroy it only after whatever reads it. Idempotent; not from a
  /// callback.
  void Shutdown();

  const Options& options() const { return client_.options(); }

  /// Submissions not answered yet (for a gauge); at most max_pending.
  size_t pending() const { return outstanding_.load(); }
  size_t max_pending() const { return max_pending_; }

  /// The thread that talks to Redis (and runs the callbacks when `callback_threads` is 0).
  std::thread::id redis_thread_id() const { return worker_.get_id(); }

 private:
  struct Pending {
    std::vector<Command> commands;
    Done done;
    std::function<std::vector<Command>()> build;  // SubmitBuilt: run before sending
    DoneKeeping done_keeping;                     // SubmitKeeping: instead of `done`
  };
  void Enqueue(Pending pending);
  void Loop();
  void RunCallbacks();
  /// Runs `answers` and counts them answered: inline, or handed to the callback threads.
  void Answer(std::vector<std::function<void()>> answers);

  Client client_;
  const size_t max_pending_;
  std::atomic<size_t> outstanding_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread worker_;
  std::once_flag shutdown_once_;

  std::mutex callbacks_mutex_;
  std::condition_variable callbacks_wake_;
  std::deque<std::function<void()>> callbacks_;
  bool callbacks_stopping_ = false;
  std::vector<std::thread> callback_threads_;
};

}  // namespace leadflow::redis
