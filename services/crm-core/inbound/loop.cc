#include "crm-core/inbound/loop.h"

#include <spdlog/spdlog.h>

#include <limits>
#include <thread>

namespace leadflow::crm {
namespace {

// Applies the batch until it succeeds; false when asked to stop first or after `max_attempts`.
bool ApplyUntilDone(BatchProcessor& processor, const std::vector<kafka::Message>& batch,
                    const InboundLoopOptions& options, const std::atomic<bool>& stop,
                    int max_attempts = std::numeric_limits<int>::max()) {
  auto backoff = std::chrono::milliseconds(50);
  for (int attempt = 1;; ++attempt) {
    absl::Status status = processor.Process(batch);
    if (status.ok()) {
      return true;
    }
    if (attempt >= max_attempts) {
      spdlog::warn("batch of {} not applied after {} attempts: {}", batch.size(), attempt,
                   status.ToString());
      return false;
    }
    spdlog::warn("batch of {} not applied, retrying in {} ms: {}", batch.size(), backoff.count(),
                 status.ToString());
    auto until = std::chrono::steady_clock::now() + backoff;
    while (std::chrono::steady_clock::now() < until) {
      if (stop) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    backoff = std::min(backoff * 2, options.retry_backoff_max);
  }
}

}  // namespace

void RunInboundLoop(kafka::Consumer& consumer, BatchProcessor& processor,
                    const InboundLoopOptions& options, const std::atomic<bool>& stop) {
  // On revocation the batch in flight is finished and its offsets stored before the partitions
  // go to another member, so the new owner does not redo it.
  // While the database is down it tries only briefly: the whole group waits for this member, and
  // the new owner will redo the batch anyway (processed ids make that harmless).
  consumer.SetRevokeHandler([&](std::vector<kafka::Message>& in_flight) {
    if (ApplyUntilDone(processor, in_flight, options, stop, /*max_attempts=*/3)) {
      consumer.StoreOffsets(in_flight).IgnoreError();
    }
  });
  while (!stop) {
    std::vector<kafka::Message> batch =
        consumer.PollBatch(options.batch_max_events, options.batch_max_wait);
    if (batch.empty()) {
      continue;
    }
#ifdef LEADFLOW_TEST_STORE_OFFSETS_BEFORE_APPLY
    // Deliberately wrong, only in a test-only binary: shows that the crash test catches it.
    consumer.StoreOffsets(batch).IgnoreError();
#endif
    if (!ApplyUntilDone(processor, batch, options, stop)) {
      break;
    }
    if (absl::Status status = consumer.StoreOffsets(batch); !status.ok()) {
      spdlog::info("offsets not stored ({}); the new owner skips these events by their ids",
                   status.ToString());
    }
  }
  consumer.Close();
}

}  // namespace leadflow::crm
