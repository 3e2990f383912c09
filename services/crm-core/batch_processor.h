#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "crm-core/planner.h"
#include "kafka/producer.h"
#include "kafka/types.h"
#include "metrics/metrics.h"
#include "pg/pg.h"
#include "redis/client.h"

namespace leadflow::crm {

/// Counters of the inbound path, registered in the process's metrics registry (/metrics).
struct InboundCounters {
  explicit InboundCounters(metrics::Registry& registry);
  metrics::Counter& batches;
  metrics::Counter& events_applied;       // new events whose effects were committed
  metrics::Counter& duplicates_database;  // already in processed_events
  metrics::Counter& duplicates_redis;     // skipped on the Redis fast path
  metrics::Counter& duplicates_in_batch;  // the same event id twice in one batch
  metrics::Counter& dead_lettered;
  metrics::Counter& leads_created;
  metrics::Counter& activities_created;
  metrics::Counter& redis_failures;
};

struct BatchProcessorOptions {
  RuleSettings rules;
  /// Prefix of the Redis processed-event marks ("<prefix>processed:<event id>").
  std::string redis_prefix = "leadflow:";
  int processed_mark_ttl_seconds = 7 * 24 * 3600;
};

/// Applies one Kafka micro-batch of inbound events: decode, drop duplicates, and write every
/// effect in one PostgreSQL transaction together with the processed-event ids. Undecodable or
/// invalid messages, and any single event the database rejects, go to the dead-letter topic.
/// When Process() returns OK every message of the batch is either committed or dead-lettered:
/// the caller may store the offsets.
class BatchProcessor {
 public:
  /// `redis` may be null (no fast path). The database connection is opened on first use and
  /// reopened after it broke.
  BatchProcessor(BatchProcessorOptions options, std::string database_url, redis::Client* redis,
                 kafka::Producer& dead_letters, InboundCounters& counters);
  ~BatchProcessor();

  /// Retryable failures (database or Kafka unavailable, deadlock) come back as Unavailable or
  /// Aborted; the caller retries the same batch, which is safe.
  absl::Status Process(const std::vector<kafka::Message>& batch);

 private:
  struct Decoded {
    const kafka::Message* message;
    events::v1::InboundEvent event;
  };
  absl::Status Apply(const std::vector<const Decoded*>& events);
  absl::Status ApplyInTransaction(const std::vector<const Decoded*>& events);
  absl::Status DeadLetter(const kafka::Message& message, const std::string& error);
  void MarkProcessed(const std::vector<std::string>& event_ids);

  BatchProcessorOptions options_;
  std::string database_url_;
  std::unique_ptr<pqxx::connection> database_;
  redis::Client* redis_;
  kafka::Producer& dead_letters_;
  InboundCounters& counters_;
};

}  // namespace leadflow::crm
