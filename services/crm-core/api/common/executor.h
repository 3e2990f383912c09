#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace leadflow::crm {

/// A fixed set of threads with a bounded queue, for the API's blocking database work: gRPC's
/// own callback threads are never blocked by a slow query, so a few slow calls cannot hold up
/// every later one. A job that does not fit in the queue is refused at once.
class Executor {
 public:
  Executor(int threads, size_t max_queued);
  /// Stop().
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// Runs what is queued, then joins the threads; later jobs are refused. The object stays
  /// usable for queued() and rejected(), which /metrics may read until the very end.
  /// Called by one thread (the one shutting down); idempotent.
  void Stop();

  /// False when the queue is full or the executor stopped (the caller answers "busy" at once).
  bool Submit(std::function<void()> job);

  /// Jobs waiting now, and jobs refused since start (for /metrics).
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  int64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  void Work();

  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::atomic<int64_t> queued_{0};
  std::atomic<int64_t> rejected_{0};
  std::vector<std::thread> threads_;
};

}  // namespace leadflow::crm
