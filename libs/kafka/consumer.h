#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kafka/types.h"

struct rd_kafka_s;
struct rd_kafka_topic_partition_list_s;

namespace leadflow::kafka {

struct ConsumerOptions {
  std::string brokers;
  std::string group_id;
  std::vector<std::string> topics;
  std::string client_id = "leadflow";
  std::chrono::milliseconds session_timeout{10000};
  Properties extra;
};

/// Moves the messages of the `revoked` (topic, partition)s out of `pending` and returns them;
/// the others stay, in order. What a cooperative revocation does to the batch being collected.
std::vector<Message> TakeRevoked(std::vector<Message>& pending,
                                 const std::set<std::pair<std::string, int32_t>>& revoked);

/// A consumer-group member whose offsets move only when the caller says a message's effects are
/// durable (StoreOffsets after the database commit); librdkafka commits stored offsets in the
/// background, and synchronously when partitions are revoked.
///
/// Not thread-safe: one thread polls, processes and stores.
class Consumer {
 public:
  /// Runs on revocation, inside PollBatch, before the partitions are given up: it should finish
  /// the messages handed to it (process them and StoreOffsets) so nothing in flight is
  /// redelivered. It is handed the messages of the revoked partitions only (with eager
  /// assignment: all of them); what it leaves unfinished is fetched again by the next owner.
  /// With cooperative assignment the messages of the partitions that stay remain in the batch
  /// PollBatch returns.
  using RevokeHandler = std::function<void(std::vector<Message>& in_flight)>;

  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const ConsumerOptions& options);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  void SetRevokeHandler(RevokeHandler handler) { on_revoke_ = std::move(handler); }

  /// Up to `max_messages`, waiting at most `max_wait` in all; empty when nothing came.
  std::vector<Message> PollBatch(size_t max_messages, std::chrono::milliseconds max_wait);

  /// Marks these messages as done: their partition's next offset becomes offset + 1.
  absl::Status StoreOffsets(const std::vector<Message>& messages);

  /// Commits the stored offsets now and waits for the answer.
  absl::Status CommitSync();

  /// Partitions currently assigned to this member.
  int AssignedPartitions() const { return assigned_partitions_; }

  /// Leaves the group cleanly (commits stored offsets); called by the destructor too.
  void Close();

 private:
  explicit Consumer(rd_kafka_s* handle);
  static void OnRebalance(rd_kafka_s* handle, int err, rd_kafka_topic_partition_list_s* partitions,
                          void* opaque);

  rd_kafka_s* handle_;
  RevokeHandler on_revoke_;
  std::vector<Message> pending_;
  int assigned_partitions_ = 0;
  bool closed_ = false;
};

}  // namespace leadflow::kafka
