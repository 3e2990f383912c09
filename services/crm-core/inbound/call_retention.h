#pragma once

// The unidentified calls' retention: calls nobody could be matched to (withheld numbers, SIP
// users) are listed for a while (CallService.ListUnidentifiedCalls), then deleted. Without it the
// table would grow with every withheld call, without bound.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "metrics/metrics.h"

namespace leadflow::crm {

struct CallRetentionOptions {
  std::string database_url;
  int retention_days = 90;
  /// Rows one statement deletes at most (each statement its own short transaction).
  int batch = 1000;
  /// Statements one pass runs at most: a backlog is worked off over several passes.
  int max_batches_per_pass = 100;
  /// Time between passes.
  std::chrono::milliseconds interval{60000};
};

struct CallRetentionCounters {
  explicit CallRetentionCounters(metrics::Registry& registry);
  metrics::Counter& pruned;    // unidentified calls deleted past their retention
  metrics::Counter& passes;    // passes run
  metrics::Counter& failures;  // passes that failed (retried at the next interval)
};

/// One pass: deletes unidentified calls older than the retention, oldest first, in statements
/// of at most `batch` rows, until one deletes fewer or `max_batches_per_pass` ran. Returns how
/// many were deleted.
absl::StatusOr<size_t> PruneUnidentifiedCalls(pqxx::connection& connection,
                                              const CallRetentionOptions& options,
                                              CallRetentionCounters& counters);

/// Runs a pass every `interval` on a thread of its own until `stop` is set.
class CallRetentionRunner {
 public:
  CallRetentionRunner(CallRetentionOptions options, CallRetentionCounters& counters,
                      const std::atomic<bool>& stop);
  ~CallRetentionRunner();
  void Join();

 private:
  void Run();
  CallRetentionOptions options_;
  CallRetentionCounters& counters_;
  const std::atomic<bool>& stop_;
  std::thread thread_;
};

}  // namespace leadflow::crm
