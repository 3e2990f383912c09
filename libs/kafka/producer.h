#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kafka/errors.h"
#include "kafka/types.h"

struct rd_kafka_s;
struct rd_kafka_message_s;

namespace leadflow::kafka {

struct ProducerOptions {
  std::string brokers;
  std::string client_id = "leadflow";
  /// How long a message may wait for the broker's acknowledgement before it is failed.
  std::chrono::milliseconds delivery_timeout{5000};
  Properties extra;
  /// Runs once, on a librdkafka thread, when the producer hits a fatal error (for example
  /// the idempotent producer was fenced): it will never deliver again and must be recreated,
  /// which for a service means exiting so that the orchestrator restarts it. Must not block.
  std::function<void(const absl::Status&)> on_fatal;
};

struct DeliveryResult {
  absl::Status status;
  /// What a failure means (ClassifyError); kNone on success. kFatal whenever the producer is in
  /// its fatal state, whatever the message's own code.
  ErrorClass error_class = ErrorClass::kNone;
  int32_t partition = -1;
  int64_t offset = -1;
};

/// An idempotent producer (acks=all, lz4, linger 5 ms). A background thread serves delivery
/// reports, so a caller learns that its message is durable without polling.
class Producer {
 public:
  using DoneCallback = std::function<void(const DeliveryResult&)>;

  static absl::StatusOr<std::unique_ptr<Producer>> Create(const ProducerOptions& options);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  /// Queues a message; `done` runs exactly once when the broker acknowledged it or it failed:
  /// on the delivery thread, or on the caller's thread when it could not even be queued (queue
  /// full, unknown topic…). Never later than the
  /// delivery timeout (+0.2 s): librdkafka can hold a message longer than message.timeout.ms
  /// while it has no metadata or no broker, and a caller answering an HTTP request cannot wait.
  /// A message answered "not acknowledged in time" may still be delivered afterwards; that is
  /// why every event carries a deterministic id and crm-core deduplicates.
  void Produce(std::string_view topic, std::string_view key, std::string_view value,
               const std::vector<Header>& headers, DoneCallback done);

  /// Produce and wait for the acknowledgement.
  DeliveryResult ProduceSync(std::string_view topic, std::string_view key, std::string_view value,
                             const std::vector<Header>& headers = {});

  /// Waits until every queued message was acknowledged or failed.
  absl::Status Flush(std::chrono::milliseconds timeout);

  /// OK when the cluster answers a metadata request in time (readiness).
  absl::Status CheckConnected(std::chrono::milliseconds timeout);

  /// Messages queued and not yet acknowledged or failed.
  int InFlight() const;

  /// OK, or the fatal error the producer met (it cannot produce any more).
  absl::Status FatalError() const;

  /// Makes librdkafka raise a fatal error, as a fenced producer would (for tests).
  void TriggerFatalErrorForTesting(const std::string& reason);

 private:
  struct Pending;
  struct Fatal;
  static void OnError(rd_kafka_s* handle, int err, const char* reason, void* opaque);
  static void OnDelivery(rd_kafka_s* handle, const rd_kafka_message_s* message, void* opaque);
  Producer(rd_kafka_s* handle, std::unique_ptr<Fatal> fatal,
           std::chrono::milliseconds delivery_timeout);
  void PollLoop();
  void ExpireOverdue();

  rd_kafka_s* handle_;
  std::unique_ptr<Fatal> fatal_;
  const std::chrono::milliseconds deadline_after_;
  std::atomic<bool> stopping_{false};
  std::mutex deadlines_mutex_;
  // All messages get the same timeout, so the queue is in deadline order.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::weak_ptr<Pending>>> deadlines_;
  std::thread poller_;
};

}  // namespace leadflow::kafka
