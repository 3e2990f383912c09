#include "kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "kafka/rdkafka_config.h"

namespace leadflow::kafka {

// One queued message's callback, run by whichever comes first: the delivery report or the
// deadline.
struct Producer::Pending {
  explicit Pending(DoneCallback callback) : callback(std::move(callback)) {}
  void Finish(const DeliveryResult& result) {
    if (!finished.exchange(true)) {
      callback(result);
      callback = nullptr;
    }
  }
  std::atomic<bool> finished{false};
  DoneCallback callback;
};

// Shared with librdkafka's error callback (its opaque), so it exists before the Producer does.
struct Producer::Fatal {
  std::atomic<bool> happened{false};
  mutable std::mutex mutex;
  absl::Status status;
  std::function<void(const absl::Status&)> on_fatal;
};

void Producer::OnError(rd_kafka_t* handle, int err, const char* reason, void* opaque) {
  if (err != RD_KAFKA_RESP_ERR__FATAL) {
    // Everything else is informational: librdkafka retries by itself, and each message still
    // gets its own delivery report by its deadline.
    spdlog::warn("kafka producer: {}: {}", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                 reason);
    return;
  }
  auto* fatal = static_cast<Fatal*>(opaque);
  char detail[512];
  rd_kafka_resp_err_t underlying = rd_kafka_fatal_error(handle, detail, sizeof(detail));
  absl::Status status = absl::InternalError(
      absl::StrCat("kafka producer fatal error ", rd_kafka_err2name(underlying), ": ", detail));
  std::function<void(const absl::Status&)> on_fatal;
  {
    std::lock_guard lock(fatal->mutex);
    if (fatal->happened.exchange(true)) {
      return;
    }
    fatal->status = status;
    on_fatal = fatal->on_fatal;
  }
  spdlog::error("{}", status.ToString());
  if (on_fatal) {
    on_fatal(status);
  }
}

void Producer::OnDelivery(rd_kafka_t* handle, const rd_kafka_message_t* message, void*) {
  std::unique_ptr<std::shared_ptr<Pending>> pending(
      static_cast<std::shared_ptr<Pending>*>(message->_private));
  if (!pending) {
    return;
  }
  DeliveryResult result;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result.error_class = ClassifyError(message->err);
    char detail[8];
    if (rd_kafka_fatal_error(handle, detail, sizeof(detail)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      result.error_class = ErrorClass::kFatal;
    }
    result.status = absl::UnavailableError(
        absl::StrCat("kafka delivery failed: ", rd_kafka_err2str(message->err)));
  } else {
    result.partition = message->partition;
    result.offset = message->offset;
  }
  (*pending)->Finish(result);
}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const ProducerOptions& options) {
  Properties properties = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"compression.type", "lz4"},
      {"message.timeout.ms", std::to_string(options.delivery_timeout.count())},
  };
  for (const auto& [key, value] : options.extra) {
    properties[key] = value;
  }
  auto conf = MakeConf(properties);
  if (!conf.ok()) {
    return conf.status();
  }
  rd_kafka_conf_set_dr_msg_cb(conf->get(), OnDelivery);
  auto fatal = std::make_unique<Fatal>();
  fatal->on_fatal = options.on_fatal;
  rd_kafka_conf_set_error_cb(conf->get(),
                             [](rd_kafka_t* handle, int err, const char* reason, void* opaque) {
                               OnError(handle, err, reason, opaque);
                             });
  rd_kafka_conf_set_opaque(conf->get(), fatal.get());
  char error[512];
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), error, sizeof(error));
  if (handle == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", error));
  }
  conf->release();  // owned by the handle now
  return std::unique_ptr<Producer>(
      new Producer(handle, std::move(fatal), options.delivery_timeout));
}

Producer::Producer(rd_kafka_s* handle, std::unique_ptr<Fatal> fatal,
                   std::chrono::milliseconds delivery_timeout)
    : handle_(handle),
      fatal_(std::move(fatal)),
      deadline_after_(delivery_timeout + std::chrono::milliseconds(200)) {
  poller_ = std::thread([this] { PollLoop(); });
}

Producer::~Producer() {
  if (rd_kafka_flush(handle_, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka producer: {} messages not delivered at shutdown",
                 rd_kafka_outq_len(handle_));
    rd_kafka_purge(handle_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  }
  stopping_ = true;
  poller_.join();
  // Serve the purged messages' reports so that every callback runs.
  for (int i = 0; i < 50 && rd_kafka_outq_len(handle_) > 0; ++i) {
    rd_kafka_poll(handle_, 100);
  }
  rd_kafka_poll(handle_, 0);
  // Whatever librdkafka still has not reported on is answered by its deadline entry.
  {
    std::lock_guard lock(deadlines_mutex_);
    for (auto& [deadline, weak] : deadlines_) {
      deadline = std::chrono::steady_clock::time_point::min();
    }
  }
  ExpireOverdue();
  rd_kafka_destroy(handle_);
}

void Producer::PollLoop() {
  while (!stopping_) {
    rd_kafka_poll(handle_, 100);
    ExpireOverdue();
  }
}

void Producer::ExpireOverdue() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Pending>> overdue;
  {
    std::lock_guard lock(deadlines_mutex_);
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      if (std::shared_ptr<Pending> pending = deadlines_.front().second.lock()) {
        overdue.push_back(std::move(pending));
      }
      deadlines_.pop_front();
    }
  }
  for (const std::shared_ptr<Pending>& pending : overdue) {
    DeliveryResult result;
    result.error_class = fatal_->happened ? ErrorClass::kFatal : ErrorClass::kRetryable;
    result.status = absl::UnavailableError(
        absl::StrCat("kafka did not acknowledge within ", deadline_after_.count(), " ms"));
    pending->Finish(result);
  }
}

void Producer::Produce(std::string_view topic, std::string_view key, std::string_view value,
                       const std::vector<Header>& headers, DoneCallback done) {
  rd_kafka_headers_t* kafka_headers = rd_kafka_headers_new(headers.size());
  for (const Header& header : headers) {
    rd_kafka_header_add(kafka_headers, header.key.data(), header.key.size(), header.value.data(),
                        header.value.size());
  }
  auto pending = std::make_shared<Pending>(std::move(done));
  {
    std::lock_guard lock(deadlines_mutex_);
    deadlines_.emplace_back(std::chrono::steady_clock::now() + deadline_after_, pending);
  }
  auto* opaque = new std::shared_ptr<Pending>(pending);
  std::string topic_name(topic);
  rd_kafka_resp_err_t err =
      rd_kafka_producev(handle_, RD_KAFKA_V_TOPIC(topic_name.c_str()),
                        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(kafka_headers),
                        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(kafka_headers);  // not taken over on failure
    std::unique_ptr<std::shared_ptr<Pending>> owned(opaque);
    DeliveryResult result;
    result.error_class = fatal_->happened ? ErrorClass::kFatal : ClassifyError(err);
    result.status =
        absl::UnavailableError(absl::StrCat("kafka enqueue failed: ", rd_kafka_err2str(err)));
    pending->Finish(result);
  }
}

DeliveryResult Producer::ProduceSync(std::string_view topic, std::string_view key,
                                     std::string_view value, const std::vector<Header>& headers) {
  auto promise = std::make_shared<std::promise<DeliveryResult>>();
  auto future = promise->get_future();
  Produce(topic, key, value, headers,
          [promise](const DeliveryResult& result) { promise->set_value(result); });
  return future.get();
}

absl::Status Producer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(handle_, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(
        absl::StrCat(rd_kafka_outq_len(handle_), " messages still queued"));
  }
  return absl::OkStatus();
}

absl::Status Producer::CheckConnected(std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(handle_, 0, nullptr, &metadata, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("kafka unreachable: ", rd_kafka_err2str(err)));
  }
  rd_kafka_metadata_destroy(metadata);
  return absl::OkStatus();
}

int Producer::InFlight() const { return rd_kafka_outq_len(handle_); }

absl::Status Producer::FatalError() const {
  std::lock_guard lock(fatal_->mutex);
  return fatal_->status;
}

void Producer::TriggerFatalErrorForTesting(const std::string& reason) {
  rd_kafka_test_fatal_error(handle_, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, reason.c_str());
}

}  // namespace leadflow::kafka
