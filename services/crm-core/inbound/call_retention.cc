#include "crm-core/inbound/call_retention.h"

#include <spdlog/spdlog.h>

#include "crm-core/store/call_repository.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"

namespace leadflow::crm {

CallRetentionCounters::CallRetentionCounters(metrics::Registry& registry)
    : pruned(
          registry
              .AddCounter("crm_unidentified_calls_pruned_total",
                          "Unidentified calls deleted past CRM_UNIDENTIFIED_CALLS_RETENTION_DAYS")
              .WithLabels({})),
      passes(registry
                 .AddCounter("crm_unidentified_calls_prune_passes_total",
                             "Passes of the unidentified calls' retention")
                 .WithLabels({})),
      failures(registry
                   .AddCounter("crm_unidentified_calls_prune_failures_total",
                               "Failed passes of the unidentified calls' retention (retried)")
                   .WithLabels({})) {}

absl::StatusOr<size_t> PruneUnidentifiedCalls(pqxx::connection& connection,
                                              const CallRetentionOptions& options,
                                              CallRetentionCounters& counters) {
  size_t total = 0;
  try {
    for (int round = 0; round < options.max_batches_per_pass; ++round) {
      pqxx::work work(connection);
      const size_t deleted =
          CallRepository(work).PruneUnidentified(options.retention_days, options.batch);
      work.commit();
      total += deleted;
      counters.pruned.Increment(static_cast<double>(deleted));
      if (deleted < static_cast<size_t>(options.batch)) {
        break;
      }
    }
  } catch (const std::exception& error) {
    return pg::ToStatus(error);
  }
  counters.passes.Increment();
  return total;
}

CallRetentionRunner::CallRetentionRunner(CallRetentionOptions options,
                                         CallRetentionCounters& counters,
                                         const std::atomic<bool>& stop)
    : options_(std::move(options)), counters_(counters), stop_(stop) {
  thread_ = std::thread([this] { Run(); });
}

CallRetentionRunner::~CallRetentionRunner() { Join(); }

void CallRetentionRunner::Join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void CallRetentionRunner::Run() {
  std::unique_ptr<pqxx::connection> connection;
  while (!stop_) {
    absl::StatusOr<size_t> pruned;
    try {
      if (!connection || !connection->is_open()) {
        connection = std::make_unique<pqxx::connection>(options_.database_url);
        pg::PrepareAll(*connection, Statements());
      }
      pruned = PruneUnidentifiedCalls(*connection, options_, counters_);
    } catch (const std::exception& error) {
      pruned = pg::ToStatus(error);
    }
    if (!pruned.ok()) {
      counters_.failures.Increment();
      connection.reset();
      spdlog::warn("unidentified calls' retention failed ({}); retrying at the next interval",
                   pruned.status().ToString());
    } else if (*pruned > 0) {
      spdlog::info("unidentified calls' retention: {} calls older than {} days deleted", *pruned,
                   options_.retention_days);
    }
    // The next pass after `interval` unless stopped, in short slices so that shutdown is never
    // held.
    const auto until = std::chrono::steady_clock::now() + options_.interval;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace leadflow::crm
