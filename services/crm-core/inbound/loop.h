#pragma once

#include <atomic>
#include <chrono>

#include "crm-core/inbound/batch.h"
#include "kafka/consumer.h"

namespace leadflow::crm {

struct InboundLoopOptions {
  size_t batch_max_events = 500;
  std::chrono::milliseconds batch_max_wait{50};
  std::chrono::milliseconds retry_backoff_max{5000};
};

/// The consumer role: poll a micro-batch, apply it (retrying transient failures with backoff),
/// then store its offsets. Offsets never move past an event whose effects are not committed.
/// Returns when `stop` is set; a batch still failing then is left to be redelivered.
void RunInboundLoop(kafka::Consumer& consumer, BatchProcessor& processor,
                    const InboundLoopOptions& options, const std::atomic<bool>& stop);

}  // namespace leadflow::crm
