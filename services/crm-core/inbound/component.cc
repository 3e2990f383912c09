#include "crm-core/inbound/component.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace leadflow::crm {

absl::StatusOr<std::unique_ptr<InboundConsumer>> InboundConsumer::Start(
    InboundOptions options, InboundCounters& counters, const std::atomic<bool>& stop) {
  std::unique_ptr<InboundConsumer> inbound(new InboundConsumer());
  if (options.redis_port != 0) {
    inbound->redis_ = std::make_unique<redis::Client>(
        redis::Options{.host = options.redis_host, .port = options.redis_port});
    if (auto pong = inbound->redis_->Run({"PING"}); !pong.ok()) {
      // Redis is a fast path: without it correctness holds through PostgreSQL.
      spdlog::warn(
          "redis unreachable at start ({}); continuing without the fast path until it "
          "answers",
          pong.status().ToString());
    }
  }
  auto producer =
      kafka::Producer::Create({.brokers = options.kafka_brokers, .client_id = "crm-core-dlq"});
  if (!producer.ok()) {
    return absl::Status(producer.status().code(),
                        absl::StrCat("kafka: ", producer.status().message()));
  }
  inbound->dead_letters_ = std::move(*producer);
  if (absl::Status status = inbound->dead_letters_->CheckConnected(std::chrono::seconds(10));
      !status.ok()) {
    return absl::Status(status.code(), absl::StrCat("kafka: ", status.message()));
  }
  auto created = kafka::Consumer::Create({.brokers = options.kafka_brokers,
                                          .group_id = options.group_id,
                                          .topics = {kafka::kInboundTopic},
                                          .client_id = "crm-core",
                                          // Inbound traffic should show up within a second:
                                          // the broker answers a fetch after 100 ms at most.
                                          .extra = {{"fetch.wait.max.ms", "100"}}});
  if (!created.ok()) {
    return absl::Status(created.status().code(),
                        absl::StrCat("kafka: ", created.status().message()));
  }
  inbound->consumer_ = std::move(*created);
  inbound->processor_ =
      std::make_unique<BatchProcessor>(options.processor, options.database_url,
                                       inbound->redis_.get(), *inbound->dead_letters_, counters);
  InboundConsumer* self = inbound.get();
  inbound->thread_ = std::thread([self, loop = options.loop, &stop] {
    RunInboundLoop(*self->consumer_, *self->processor_, loop, stop);
  });
  spdlog::info("consuming {} as group {}", kafka::kInboundTopic, options.group_id);
  return inbound;
}

InboundConsumer::~InboundConsumer() { Join(); }

void InboundConsumer::Join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

absl::Status InboundConsumer::CheckConnected(std::chrono::milliseconds timeout) {
  return dead_letters_->CheckConnected(timeout);
}

}  // namespace leadflow::crm
