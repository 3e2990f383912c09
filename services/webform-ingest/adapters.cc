#include "webform-ingest/adapters.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace leadflow::webform {

void KafkaPublisher::Publish(const std::string& key, const std::string& value,
                             const std::vector<kafka::Header>& headers,
                             std::function<void(absl::Status)> done) {
  producer_->Produce(
      kafka::kInboundTopic, key, value, headers,
      [done = std::move(done)](const kafka::DeliveryResult& result) { done(result.status); });
}

absl::StatusOr<std::vector<redis::Reply>> RedisStore::Pipeline(
    const std::vector<redis::Command>& commands) {
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  if (now < skip_until_.load()) {
    return absl::UnavailableError("redis: backing off after a failure");
  }
  auto replies = client_->Pipeline(commands);
  if (!replies.ok()) {
    spdlog::warn("webform: {}; degrading for {} ms", replies.status().ToString(), backoff_.count());
    skip_until_ = (std::chrono::steady_clock::now() + backoff_).time_since_epoch().count();
    return replies.status();
  }
  for (const redis::Reply& reply : *replies) {
    if (reply.type == redis::Reply::Type::kError) {
      return absl::InternalError(absl::StrCat("redis: ", reply.text));
    }
  }
  return replies;
}

absl::StatusOr<int64_t> RedisStore::CountRequest(const std::string& client, int64_t window) {
  std::string key = absl::StrCat(client_->options().key_prefix, "rl:", client, ":", window);
  // The key outlives its minute a little, so a clock step between replicas does not reset it.
  auto replies = Pipeline({{"INCR", key}, {"EXPIRE", key, "120"}});
  if (!replies.ok()) {
    return replies.status();
  }
  if ((*replies)[0].type != redis::Reply::Type::kInteger) {
    return absl::InternalError("redis: INCR did not answer an integer");
  }
  return (*replies)[0].integer;
}

absl::StatusOr<std::optional<std::string>> RedisStore::ClaimFingerprint(
    const std::string& fingerprint, const std::string& event_id, std::chrono::seconds ttl) {
  std::string key = absl::StrCat(client_->options().key_prefix, "fp:", fingerprint);
  // SET … NX GET (Redis ≥ 7): sets when absent and returns the earlier value in one step.
  auto replies = Pipeline({{"SET", key, event_id, "NX", "GET", "EX", std::to_string(ttl.count())}});
  if (!replies.ok()) {
    return replies.status();
  }
  const redis::Reply& reply = (*replies)[0];
  if (reply.IsNil()) {
    return std::optional<std::string>();
  }
  if (reply.type != redis::Reply::Type::kString) {
    return absl::InternalError("redis: SET NX GET did not answer a string");
  }
  return std::optional<std::string>(reply.text);
}

}  // namespace leadflow::webform
