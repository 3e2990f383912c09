#pragma once

#include <atomic>
#include <chrono>

#include "kafka/producer.h"
#include "redis/pipelined_client.h"
#include "webform-ingest/service.h"

namespace leadflow::webform {

/// Publishes to leadflow.inbound.v1 through the idempotent producer.
class KafkaPublisher : public Publisher {
 public:
  explicit KafkaPublisher(kafka::Producer* producer) : producer_(producer) {}
  void Publish(const std::string& key, const std::string& value,
               const std::vector<kafka::Header>& headers,
               std::function<void(absl::Status)> done) override;

 private:
  kafka::Producer* producer_;
};

/// Rate-limit counters and fingerprints in Redis, through the auto-pipelining client: the
/// commands of all concurrent requests share round trips. After a failure Redis is left alone
/// for `backoff`, so that a Redis outage costs requests nothing but the degraded path.
class RedisStore : public Store {
 public:
  explicit RedisStore(redis::PipelinedClient* client,
                      std::chrono::milliseconds backoff = std::chrono::milliseconds(1000))
      : client_(client), backoff_(backoff) {}
  void CountRequest(const std::string& client, int64_t window, CountDone done) override;
  void ClaimFingerprint(const std::string& fingerprint, const std::string& event_id,
                        std::chrono::seconds ttl, ClaimDone done) override;

 private:
  using RepliesDone = std::function<void(absl::StatusOr<std::vector<redis::Reply>>)>;
  void Pipeline(std::vector<redis::Command> commands, RepliesDone done);

  redis::PipelinedClient* client_;
  const std::chrono::milliseconds backoff_;
  std::atomic<int64_t> skip_until_{0};  // steady_clock ticks
};

}  // namespace leadflow::webform
