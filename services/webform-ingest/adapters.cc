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

void RedisStore::Pipeline(std::vector<redis::Command> commands, RepliesDone done) {
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  if (now < skip_until_.load()) {
    done(absl::UnavailableError("redis: backing off after a failure"));
    return;
  }
  client_->Submit(std::move(commands), [this, done = std::move(done)](
                                           absl::StatusOr<std::vector<redis::Reply>> replies) {
    if (!replies.ok()) {
      spdlog::warn("webform: {}; degrading for {} ms", replies.status().ToString(),
                   backoff_.count());
      skip_until_ = (std::chrono::steady_clock::now() + backoff_).time_since_epoch().count();
      done(replies.status());
      return;
    }
    for (const redis::Reply& reply : *replies) {
      if (reply.type == redis::Reply::Type::kError) {
        done(absl::InternalError(absl::StrCat("redis: ", reply.text)));
        return;
      }
    }
    done(std::move(replies));
  });
}

void RedisStore::CountRequest(const std::string& client, int64_t window, CountDone done) {
  std::string key = absl::StrCat(client_->options().key_prefix, "rl:", client, ":", window);
  // The key outlives its minute a little, so a clock step between replicas does not reset it.
  Pipeline({{"INCR", key}, {"EXPIRE", key, "120"}},
           [done = std::move(done)](absl::StatusOr<std::vector<redis::Reply>> replies) {
             if (!replies.ok()) {
               done(replies.status());
             } else if ((*replies)[0].type != redis::Reply::Type::kInteger) {
               done(absl::InternalError("redis: INCR did not answer an integer"));
             } else {
               done((*replies)[0].integer);
             }
           });
}

void RedisStore::ClaimFingerprint(const std::string& fingerprint, const std::string& event_id,
                                  std::chrono::seconds ttl, ClaimDone done) {
  std::string key = absl::StrCat(client_->options().key_prefix, "fp:", fingerprint);
  // SET … NX GET (Redis ≥ 7): sets when absent and returns the earlier value in one step.
  Pipeline({{"SET", key, event_id, "NX", "GET", "EX", std::to_string(ttl.count())}},
           [done = std::move(done)](absl::StatusOr<std::vector<redis::Reply>> replies) {
             if (!replies.ok()) {
               done(replies.status());
               return;
             }
             const redis::Reply& reply = (*replies)[0];
             if (reply.IsNil()) {
               done(std::optional<std::string>());
             } else if (reply.type != redis::Reply::Type::kString) {
               done(absl::InternalError("redis: SET NX GET did not answer a string"));
             } else {
               done(std::optional<std::string>(reply.text));
             }
           });
}

}  // namespace leadflow::webform
