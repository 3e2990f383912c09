#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pg/pg.h"

namespace leadflow::pg {

/// Bounds of a pool's waits.
struct PoolOptions {
  /// How long a caller waits for a free connection before giving up with Unavailable.
  std::chrono::milliseconds acquire_timeout{2000};
  /// PostgreSQL's statement_timeout on every connection (0: none). A statement cut by it comes
  /// back as Unavailable (SQLSTATE 57014).
  std::chrono::milliseconds statement_timeout{0};
};

/// A fixed set of connections with every statement prepared, handed out one caller at a time.
/// A connection found broken is replaced on its next use. Every wait is bounded.
class Pool {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  Pool(std::string url, int size, std::vector<Statement> statements, PoolOptions options = {});
  ~Pool();

  /// Opens every connection now: start-up fails fast when the database is unreachable.
  absl::Status Connect();

  /// Runs `body` with a connection; exceptions from libpqxx become statuses (see ToStatus).
  /// Waits at most `acquire_timeout` for a connection (then Unavailable).
  absl::Status With(const std::function<absl::Status(pqxx::connection&)>& body);

  /// The same, bounded by the caller's `deadline` too: no connection before it is
  /// DeadlineExceeded, and the statements run with a statement_timeout no later than it.
  absl::Status With(const std::function<absl::Status(pqxx::connection&)>& body, Deadline deadline);

  /// Callers that gave up waiting for a connection, since start (a counter for /metrics).
  int64_t acquire_timeouts() const { return acquire_timeouts_.load(std::memory_order_relaxed); }
  /// Callers waiting for a connection now.
  int64_t waiting() const { return waiting_.load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<pqxx::connection> Open();

  std::string url_;
  std::vector<Statement> statements_;
  size_t size_;
  PoolOptions options_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::atomic<int64_t> acquire_timeouts_{0};
  std::atomic<int64_t> waiting_{0};
};

}  // namespace leadflow::pg
