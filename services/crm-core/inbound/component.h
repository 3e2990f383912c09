#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "crm-core/inbound/batch.h"
#include "crm-core/inbound/loop.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "redis/client.h"

namespace leadflow::crm {

struct InboundOptions {
  std::string database_url;
  std::string kafka_brokers;
  std::string group_id;
  // Redis fast path: off when the port is 0.
  std::string redis_host;
  int redis_port = 0;
  BatchProcessorOptions processor;
  InboundLoopOptions loop;
};

/// The consumer role: Redis (optional), the dead-letter producer, the Kafka consumer and the
/// thread running the inbound loop until `stop` is set.
class InboundConsumer {
 public:
  /// Fails fast when Kafka does not answer; Redis that does not answer is only a warning.
  static absl::StatusOr<std::unique_ptr<InboundConsumer>> Start(InboundOptions options,
                                                                InboundCounters& counters,
                                                                const std::atomic<bool>& stop);
  /// Join().
  ~InboundConsumer();
  /// Waits for the loop to return (after `stop` is set).
  void Join();
  /// Kafka answers (for /readyz).
  absl::Status CheckConnected(std::chrono::milliseconds timeout);

 private:
  InboundConsumer() = default;
  std::unique_ptr<redis::Client> redis_;
  std::unique_ptr<kafka::Producer> dead_letters_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::unique_ptr<BatchProcessor> processor_;
  std::thread thread_;
};

}  // namespace leadflow::crm
