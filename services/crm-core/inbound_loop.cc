#include "crm-core/inbound_loop.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace leadflow::crm {
namespace {

// Applies the batch until it succeeds; false when asked to stop first.
bool ApplyUntilDone(BatchProcessor& processor, const std::vector<kafka::Message>& batch,
                    const InboundLoopOptions& options, const std::atomic<bool>& stop) {
  auto backoff = std::chrono::milliseconds(50);
  while (true) {
    absl::Status status = processor.Process(batch);
    if (status.ok()) {
      return true;
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
  consumer.SetRevokeHandler([&](std::vector<kafka::Message>& in_flight) {
    if (ApplyUntilDone(processor, in_flight, options, stop)) {
      consumer.StoreOffsets(in_flight).IgnoreError();
    }
  });
  while (!stop) {
    std::vector<kafka::Message> batch =
        consumer.PollBatch(options.batch_max_events, options.batch_max_wait);
    if (batch.empty()) {
      continue;
    }
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
