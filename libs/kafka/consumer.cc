#include "kafka/consumer.h"

#include <algorithm>
#include <string_view>

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "kafka/rdkafka_config.h"

namespace leadflow::kafka {
namespace {

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};

Message ToMessage(const rd_kafka_message_t& raw) {
  Message message;
  message.topic = rd_kafka_topic_name(raw.rkt);
  message.partition = raw.partition;
  message.offset = raw.offset;
  if (raw.key != nullptr) {
    message.key.assign(static_cast<const char*>(raw.key), raw.key_len);
  }
  if (raw.payload != nullptr) {
    message.value.assign(static_cast<const char*>(raw.payload), raw.len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      message.headers.push_back(
          {name, value == nullptr ? "" : std::string(static_cast<const char*>(value), size)});
    }
  }
  return message;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options) {
  if (options.group_id.empty() || options.topics.empty()) {
    return absl::InvalidArgumentError("kafka consumer needs a group id and at least one topic");
  }
  Properties properties = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
      {"group.id", options.group_id},
      {"enable.auto.commit", "true"},
      {"enable.auto.offset.store", "false"},
      {"auto.commit.interval.ms", "1000"},
      {"auto.offset.reset", "earliest"},
      {"session.timeout.ms", std::to_string(options.session_timeout.count())},
      {"enable.partition.eof", "false"},
  };
  for (const auto& [key, value] : options.extra) {
    properties[key] = value;
  }
  auto conf = MakeConf(properties);
  if (!conf.ok()) {
    return conf.status();
  }
  auto consumer = std::unique_ptr<Consumer>(new Consumer(nullptr));
  rd_kafka_conf_set_opaque(conf->get(), consumer.get());
  rd_kafka_conf_set_rebalance_cb(
      conf->get(),
      [](rd_kafka_t* handle, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
         void* opaque) { OnRebalance(handle, err, partitions, opaque); });
  char error[512];
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), error, sizeof(error));
  if (handle == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", error));
  }
  conf.value().release();
  consumer->handle_ = handle;
  rd_kafka_poll_set_consumer(handle);
  PartitionListPtr topics(rd_kafka_topic_partition_list_new(options.topics.size()));
  for (const std::string& topic : options.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t err = rd_kafka_subscribe(handle, topics.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("kafka subscribe: ", rd_kafka_err2str(err)));
  }
  return consumer;
}

Consumer::Consumer(rd_kafka_s* handle) : handle_(handle) {}

Consumer::~Consumer() {
  if (handle_ != nullptr) {
    Close();
    rd_kafka_destroy(handle_);
  }
}

void Consumer::Close() {
  if (closed_ || handle_ == nullptr) {
    return;
  }
  closed_ = true;
  rd_kafka_consumer_close(handle_);
}

void Consumer::OnRebalance(rd_kafka_s* handle, int err, rd_kafka_topic_partition_list_s* partitions,
                           void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  // Eager assignment hands over the whole assignment each time; cooperative (incremental)
  // assignment only what is added or taken away, and must be answered with incremental calls.
  const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE";
  auto check = [](const char* what, rd_kafka_error_t* error) {
    if (error != nullptr) {
      spdlog::error("kafka: {} failed: {}", what, rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    }
  };
  auto check_err = [](const char* what, rd_kafka_resp_err_t error) {
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::error("kafka: {} failed: {}", what, rd_kafka_err2str(error));
    }
  };
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("kafka: assigned {} partitions ({})", partitions->cnt,
                 cooperative ? "incremental" : "eager");
    if (cooperative) {
      check("incremental assign", rd_kafka_incremental_assign(handle, partitions));
      self->assigned_partitions_ += partitions->cnt;
    } else {
      check_err("assign", rd_kafka_assign(handle, partitions));
      self->assigned_partitions_ = partitions->cnt;
    }
    return;
  }
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    // A rebalance error: give everything up; the group assigns again.
    spdlog::error("kafka: rebalance error: {}",
                  rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)));
    // Nothing stays assigned, so everything pending is fetched again from the committed offsets.
    if (cooperative) {
      rd_kafka_topic_partition_list_t* current = nullptr;
      if (rd_kafka_assignment(handle, &current) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        PartitionListPtr owned(current);
        check("incremental unassign", rd_kafka_incremental_unassign(handle, owned.get()));
      }
    } else {
      check_err("unassign", rd_kafka_assign(handle, nullptr));
    }
    self->pending_.clear();
    self->assigned_partitions_ = 0;
    return;
  }
  const bool lost = rd_kafka_assignment_lost(handle) != 0;
  spdlog::info("kafka: revoking {} partitions{}", partitions->cnt, lost ? " (lost)" : "");
  // Eager: everything is revoked and fetched again from the committed offsets when assigned.
  // Cooperative: only `partitions` go; the others stay assigned and librdkafka fetches on
  // past what it handed over, so their messages must stay in the batch being collected:
  // dropping them would lose them, and storing later offsets would skip them for good.
  std::vector<Message> revoked;
  if (cooperative) {
    std::set<std::pair<std::string, int32_t>> going;
    for (int i = 0; i < partitions->cnt; ++i) {
      going.insert({partitions->elems[i].topic, partitions->elems[i].partition});
    }
    revoked = TakeRevoked(self->pending_, going);
  } else {
    revoked = std::move(self->pending_);
    self->pending_.clear();
  }
  if (self->on_revoke_ && !revoked.empty()) {
    // Effects are idempotent (processed ids), so finishing the batch is right even when the
    // partitions were lost; only the commit is pointless then.
    self->on_revoke_(revoked);
  }
  if (!lost) {
    // Hand the new owner exactly where we stopped.
    rd_kafka_resp_err_t commit_err = rd_kafka_commit(handle, nullptr, 0);
    if (commit_err != RD_KAFKA_RESP_ERR_NO_ERROR && commit_err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      spdlog::warn("kafka: commit on revocation failed: {}", rd_kafka_err2str(commit_err));
    }
  }
  // What the handler did not finish is redelivered to the next owner from the committed offset.
  if (cooperative) {
    check("incremental unassign", rd_kafka_incremental_unassign(handle, partitions));
    self->assigned_partitions_ = std::max(0, self->assigned_partitions_ - partitions->cnt);
  } else {
    check_err("unassign", rd_kafka_assign(handle, nullptr));
    self->assigned_partitions_ = 0;
  }
}

std::vector<Message> TakeRevoked(std::vector<Message>& pending,
                                 const std::set<std::pair<std::string, int32_t>>& revoked) {
  std::vector<Message> taken;
  std::vector<Message> kept;
  for (Message& message : pending) {
    (revoked.count({message.topic, message.partition}) != 0 ? taken : kept)
        .push_back(std::move(message));
  }
  pending = std::move(kept);
  return taken;
}

std::vector<Message> Consumer::PollBatch(size_t max_messages, std::chrono::milliseconds max_wait) {
  pending_.clear();
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  while (pending_.size() < max_messages) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      break;
    }
    std::unique_ptr<rd_kafka_message_t, MessageDeleter> raw(
        rd_kafka_consumer_poll(handle_, static_cast<int>(left.count())));
    if (!raw) {
      continue;
    }
    if (raw->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: consumer error: {}", rd_kafka_message_errstr(raw.get()));
      continue;
    }
    pending_.push_back(ToMessage(*raw));
  }
  return std::move(pending_);
}

absl::Status Consumer::StoreOffsets(const std::vector<Message>& messages) {
  std::map<std::pair<std::string, int32_t>, int64_t> next;
  for (const Message& message : messages) {
    int64_t& offset = next[{message.topic, message.partition}];
    offset = std::max(offset, message.offset + 1);
  }
  if (next.empty()) {
    return absl::OkStatus();
  }
  PartitionListPtr list(rd_kafka_topic_partition_list_new(next.size()));
  for (const auto& [where, offset] : next) {
    rd_kafka_topic_partition_list_add(list.get(), where.first.c_str(), where.second)->offset =
        offset;
  }
  rd_kafka_resp_err_t err = rd_kafka_offsets_store(handle_, list.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The partition moved to another member meanwhile: it will redeliver, and the database's
    // processed-event ids make that harmless.
    return absl::FailedPreconditionError(
        absl::StrCat("kafka offsets store: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status Consumer::CommitSync() {
  rd_kafka_resp_err_t err = rd_kafka_commit(handle_, nullptr, 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return absl::UnavailableError(absl::StrCat("kafka commit: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

}  // namespace leadflow::kafka
