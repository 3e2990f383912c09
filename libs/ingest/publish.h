#pragma once

#include <functional>
#include <string>
#include <vector>

#include "http/server.h"
#include "kafka/producer.h"
#include "kafka/types.h"

namespace leadflow::ingest {

/// Where accepted events go (Kafka in production, a fake in unit tests).
class Publisher {
 public:
  using Done = std::function<void(const kafka::DeliveryResult&)>;
  virtual ~Publisher() = default;
  /// `done` runs once, on any thread, when the event is durable (status OK) or could not be
  /// (error_class says why), by the producer's delivery timeout at the latest.
  virtual void Publish(const std::string& key, const std::string& value,
                       const std::vector<kafka::Header>& headers, Done done) = 0;
};

/// Publishes to one topic through the idempotent producer.
class KafkaPublisher : public Publisher {
 public:
  KafkaPublisher(kafka::Producer* producer, std::string topic)
      : producer_(producer), topic_(std::move(topic)) {}
  void Publish(const std::string& key, const std::string& value,
               const std::vector<kafka::Header>& headers, Done done) override;

 private:
  kafka::Producer* producer_;
  const std::string topic_;
};

/// The HTTP answer to a request whose event Kafka did not take, decided by the error's class
/// (kafka::ClassifyError, the one switch):
/// - retryable → 503 `unavailable` with Retry-After: the client (browser, provider) retries;
/// - permanent → 500 `internal`: retrying will not help; logged with the reason;
/// - fatal → 503 `unavailable` with Retry-After, as another replica can take it; the service
///   meanwhile turns unready and exits (ServiceLifecycle), so that it is restarted.
http::Response AnswerForKafkaFailure(const kafka::DeliveryResult& result, int retry_after_seconds);

}  // namespace leadflow::ingest
