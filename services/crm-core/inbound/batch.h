#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "crm-core/inbound/email_thread.h"
#include "crm-core/inbound/planner.h"
#include "kafka/producer.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "metrics/metrics.h"
#include "pg/pg.h"
#include "redis/client.h"

namespace leadflow::crm {

/// The telephony channel's counters (docs/operations.md): calls applied by direction and
/// outcome, what they did to call-backs, unidentified calls, and late recordings.
struct CallCounters {
  explicit CallCounters(metrics::Registry& registry);
  /// A batch's applied call events (recording-only events are counted as recordings).
  void Add(const std::vector<const ContactAttempt*>& calls, const CallWriteResult& result);
  metrics::Family<metrics::Counter>& calls;  // {direction, outcome}
  metrics::Counter& call_backs_created;
  metrics::Counter& call_backs_updated;
  metrics::Counter& call_backs_completed;
  metrics::Counter& call_backs_already_reached;
  metrics::Counter& unidentified;
  metrics::Counter& recordings_attached;
  metrics::Counter& recordings_deferred;
  metrics::Counter& recordings_unmatched;
  metrics::Counter& recordings_dropped;
};

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
  metrics::Counter& contacts_created;  // simple mode
  metrics::Counter& deals_created;     // simple mode
  metrics::Counter& activities_created;
  metrics::Counter& redis_failures;
  metrics::Counter& identities_capped;          // not attached: the lead reached the cap
  metrics::Counter& identities_held_elsewhere;  // not attached: another record holds them
  metrics::Counter& reassigned_inactive;     // a task to a queue: the record's responsible is off
  metrics::Counter& reassigned_unassigned;   // a task to a queue: the record has no responsible
  metrics::Counter& lock_closure_exhausted;  // identity-lock closure did not settle in bounds
  metrics::Counter& batch_splits;            // a failing batch split in two to find the culprit
  metrics::Counter& failures_transient;      // batch attempts failed, retried as they are
  metrics::Counter& failures_data;           // batch attempts refused for their data
  metrics::Counter& failures_persistent;     // batch attempts failing deterministically
  EmailCounters email;                       // the email channel's (inbound/email_thread.h)
  CallCounters calls;                        // the telephony channel's
};

struct BatchProcessorOptions {
  RuleSettings rules;
  /// Prefix of the Redis processed-event marks ("<prefix>processed:<event id>").
  std::string redis_prefix = "leadflow:";
  int processed_mark_ttl_seconds = 7 * 24 * 3600;
  /// Advisory locks one transaction may take (the batch's identities and those of the leads
  /// they match). Past it the batch fails as ResourceExhausted and is split.
  size_t max_identity_locks = 8192;
  /// Rounds of "lock the matched leads' other identities, read again" before giving up.
  int lock_closure_rounds = 5;
  /// Attempts of a batch failing deterministically (SQLSTATE 53200, 54xxx, XX000, a conversion
  /// error) before it is split to isolate the event that causes it.
  int attempts_before_split = 3;
  /// Attempts of an event that fails deterministically alone (in a batch of its own or
  /// isolated by splitting; each a retry of the batch, with the caller's backoff) before it
  /// is dead-lettered.
  int attempts_alone = 3;
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
  /// Aborted; the caller retries the same batch, which is safe. A batch failing
  /// deterministically is returned as such `attempts_before_split` times, then split until the
  /// event that still fails alone `attempts_alone` times is dead-lettered: a batch passed again
  /// and again always ends. When both halves of a split fail with the same SQLSTATE class the
  /// database is judged at fault, not an event: Unavailable, retried like an outage.
  /// A message is dead-lettered once however often its batch is retried.
  absl::Status Process(const std::vector<kafka::Message>& batch);

 private:
  struct Decoded {
    const kafka::Message* message;
    events::v1::InboundEvent event;
  };
  absl::Status ProcessOnce(const std::vector<kafka::Message>& batch);
  // The whole batch: attempts, then narrowing down when its failure is not transient.
  absl::Status Apply(const std::vector<const Decoded*>& events);
  // One transaction, its failure counted and judged.
  absl::Status TryApply(const std::vector<const Decoded*>& events);
  // `events` failed with `failure` (data or persistent): bisect to the events that fail alone
  // and dead-letter them, unless both halves fail alike (an outage: returned as Unavailable).
  absl::Status Narrow(const std::vector<const Decoded*>& events, const absl::Status& failure);
  absl::Status ApplyInTransaction(const std::vector<const Decoded*>& events);
  absl::Status DeadLetter(const kafka::Message& message, const std::string& error);
  void MarkProcessed(const std::vector<std::string>& event_ids);
  // Counts a failed Redis call and logs the outage once (at most a line a minute when Redis
  // comes and goes), and its end when it was logged.
  void NoteRedis(const absl::Status& status);

  // What the retries of one batch share: the same batch is passed again until it succeeds.
  struct InFlight {
    std::string identity;  // every message's coordinates and a hash of its bytes, in order
    int persistent_failures = 0;
    std::map<std::string, int> failures_alone;  // deterministic failures of an event alone
    std::set<std::string> dead_lettered;        // messages already in the DLQ
  };

  BatchProcessorOptions options_;
  InFlight in_flight_;
  std::string database_url_;
  std::unique_ptr<pqxx::connection> database_;
  // Round-robin queue positions are taken here, each in a short transaction of its own, so that
  // no batch transaction holds a queue's row (store/sql/inbound/advance_queue.sql).
  std::unique_ptr<pqxx::connection> positions_;
  redis::Client* redis_;
  bool redis_warned_outage_ = false;  // the current outage was logged (its end will be too)
  std::chrono::steady_clock::time_point redis_warned_{};
  kafka::Producer& dead_letters_;
  InboundCounters& counters_;
};

}  // namespace leadflow::crm
