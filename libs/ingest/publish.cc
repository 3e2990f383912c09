#include "ingest/publish.h"

#include <spdlog/spdlog.h>

namespace leadflow::ingest {

void KafkaPublisher::Publish(const std::string& key, const std::string& value,
                             const std::vector<kafka::Header>& headers, Done done) {
  producer_->Produce(topic_, key, value, headers, std::move(done));
}

http::Response AnswerForKafkaFailure(const kafka::DeliveryResult& result, int retry_after_seconds) {
  switch (result.error_class) {
    case kafka::ErrorClass::kPermanent:
      spdlog::error("ingest: Kafka refused an event for good: {}", result.status.ToString());
      return http::Response::Error(500, "internal", "the event cannot be stored");
    case kafka::ErrorClass::kNone:  // a failure without a class: treat as transient
    case kafka::ErrorClass::kRetryable:
    case kafka::ErrorClass::kFatal:
      return http::Response::Error(503, "unavailable", "the event could not be stored; retry")
          .WithHeader("Retry-After", std::to_string(retry_after_seconds));
  }
  return http::Response::Error(500, "internal");
}

}  // namespace leadflow::ingest
