#include "ingest/store.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "ingest/client_ip.h"

namespace leadflow::ingest {

void Store::CountAndClaim(const std::string& client, int64_t window, int64_t limit,
                          const std::string& kind, const std::string& key, const std::string& value,
                          std::chrono::seconds ttl, CountClaimDone done) {
  CountRequest(client, window,
               [this, limit, kind, key, value, ttl,
                done = std::move(done)](absl::StatusOr<int64_t> count) mutable {
                 if (!count.ok()) {
                   done(count.status());
                   return;
                 }
                 if (*count > limit) {
                   done(CountedClaim{*count, false, std::nullopt});
                   return;
                 }
                 Claim(kind, key, value, ttl,
                       [count = *count, done = std::move(done)](
                           absl::StatusOr<std::optional<std::string>> earlier) {
                         if (!earlier.ok()) {
                           // The count stands: only the claim failed.
                           done(CountedClaim{count, true, std::nullopt, earlier.status()});
                         } else {
                           done(CountedClaim{count, true, std::move(*earlier)});
                         }
                       });
               });
}

bool FailsOpen(const absl::Status& status) {
  // Overload is ours, not Redis's: answer 503 and keep the limits on. Anything else is Redis
  // failing us, and a lead is worth more than a rate limit.
  return status.code() != absl::StatusCode::kResourceExhausted;
}

RedisStore::RedisStore(redis::PipelinedClient* client, std::chrono::milliseconds backoff)
    : client_(client), backoff_(backoff) {}

void RedisStore::Pipeline(std::vector<redis::Command> commands, RepliesDone done,
                          bool error_replies) {
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  if (now < skip_until_.load()) {
    done(absl::UnavailableError("redis: backing off after a failure"));
    return;
  }
  client_->Submit(std::move(commands), [this, error_replies, done = std::move(done)](
                                           absl::StatusOr<std::vector<redis::Reply>> replies) {
    if (!replies.ok()) {
      if (replies.status().code() != absl::StatusCode::kResourceExhausted) {
        // A full queue is load, not an outage: no back-off, or the limits would switch off.
        spdlog::warn("ingest: {}; degrading for {} ms", replies.status().ToString(),
                     backoff_.count());
        skip_until_ = (std::chrono::steady_clock::now() + backoff_).time_since_epoch().count();
      }
      done(replies.status());
      return;
    }
    for (const redis::Reply& reply : *replies) {
      if (!error_replies && reply.type == redis::Reply::Type::kError) {
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

void RedisStore::Claim(const std::string& kind, const std::string& key, const std::string& value,
                       std::chrono::seconds ttl, ClaimDone done) {
  std::string redis_key = absl::StrCat(client_->options().key_prefix, kind, ":", key);
  // SET … NX GET (Redis ≥ 7): sets when absent and returns the earlier value in one step.
  Pipeline({{"SET", redis_key, value, "NX", "GET", "EX", std::to_string(ttl.count())}},
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

void RedisStore::Release(const std::string& kind, const std::string& key, const std::string& value,
                         std::function<void(absl::Status)> done) {
  std::string redis_key = absl::StrCat(client_->options().key_prefix, kind, ":", key);
  // Compare and delete in one step: a claim made since by someone else stays.
  static constexpr char kDeleteIfEqual[] =
      "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
      "return 0";
  Pipeline({{"EVAL", kDeleteIfEqual, "1", redis_key, value}},
           [done = std::move(done)](absl::StatusOr<std::vector<redis::Reply>> replies) {
             done(replies.status());
           });
}

void RedisStore::CountAndClaim(const std::string& client, int64_t window, int64_t limit,
                               const std::string& kind, const std::string& key,
                               const std::string& value, std::chrono::seconds ttl,
                               CountClaimDone done) {
  const std::string& prefix = client_->options().key_prefix;
  std::string counter = absl::StrCat(prefix, "rl:", client, ":", window);
  // CountRequest's and Claim's commands in one round trip. Native commands, not a script: a
  // Lua script doing the same cost Redis about twice the CPU (redis-benchmark here: ~10 us
  // against ~5 us), on the cores the service shares with it. Error replies are looked at one by
  // one: a claim Redis refuses (SET NX GET before Redis 7.0, a key of another type) is the
  // claim's failure only, and the limit is still decided on INCR's answer.
  Pipeline(
      {{"INCR", counter},
       {"EXPIRE", counter, "120"},
       {"SET", absl::StrCat(prefix, kind, ":", key), value, "NX", "GET", "EX",
        std::to_string(ttl.count())}},
      [limit, done = std::move(done)](absl::StatusOr<std::vector<redis::Reply>> replies) {
        if (!replies.ok()) {
          done(replies.status());
          return;
        }
        const redis::Reply& count = (*replies)[0];
        const redis::Reply& set = (*replies)[2];
        if (count.type != redis::Reply::Type::kInteger) {
          done(absl::InternalError(absl::StrCat("redis: INCR did not answer an integer: ",
                                                count.type == redis::Reply::Type::kError
                                                    ? count.text
                                                    : std::string("another type"))));
          return;
        }
        if (count.integer > limit) {
          // Over the limit. Whatever SET recorded stays: the value is the content's (an
          // Idempotency-Key's fingerprint) or an id that was never published (a fingerprint's
          // candidate), so a later request finding it goes on under the right id. Deleting it
          // could delete a binding a concurrent request of the same content relies on.
          done(CountedClaim{count.integer, false, std::nullopt});
          return;
        }
        CountedClaim claimed{count.integer, true, std::nullopt};
        if (set.type == redis::Reply::Type::kError) {
          claimed.claim_status = absl::InternalError(absl::StrCat("redis: ", set.text));
        } else if (set.type == redis::Reply::Type::kString) {
          claimed.earlier = set.text;
        } else if (!set.IsNil()) {
          claimed.claim_status = absl::InternalError("redis: SET NX GET did not answer a string");
        }
        done(std::move(claimed));
      },
      /*error_replies=*/true);
}

void RateLimiter::CheckAndClaim(const std::string& client,
                                std::chrono::system_clock::time_point now, ClaimRequest claim,
                                std::function<void(Decision, ClaimResult)> done) {
  if (per_minute_ <= 0) {
    store_->Claim(claim.kind, claim.key, claim.value, claim.ttl,
                  [done = std::move(done)](ClaimResult earlier) {
                    done({Verdict::kAllowed, 0}, std::move(earlier));
                  });
    return;
  }
  int64_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  store_->CountAndClaim(
      RateLimitSubject(client), seconds / 60, per_minute_, claim.kind, claim.key, claim.value,
      claim.ttl, [seconds, done = std::move(done)](absl::StatusOr<Store::CountedClaim> result) {
        if (!result.ok()) {
          if (FailsOpen(result.status())) {
            done({Verdict::kFailedOpen, 0}, result.status());
          } else {
            done({Verdict::kOverloaded, 1}, result.status());
          }
        } else if (!result->claimed) {
          done({Verdict::kLimited, static_cast<int>(60 - seconds % 60)},
               absl::FailedPreconditionError("rate limited: no claim made"));
        } else if (!result->claim_status.ok()) {
          // The count let the request through; only its claim failed (the caller fails that
          // open or answers overload, as for Claim alone).
          done({Verdict::kAllowed, 0}, result->claim_status);
        } else {
          done({Verdict::kAllowed, 0}, std::move(result->earlier));
        }
      });
}

void RateLimiter::Check(const std::string& client, std::chrono::system_clock::time_point now,
                        std::function<void(Decision)> done) {
  if (per_minute_ <= 0) {
    done({Verdict::kAllowed, 0});
    return;
  }
  int64_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  store_->CountRequest(RateLimitSubject(client), seconds / 60,
                       [this, seconds, done = std::move(done)](absl::StatusOr<int64_t> count) {
                         if (!count.ok()) {
                           if (FailsOpen(count.status())) {
                             done({Verdict::kFailedOpen, 0});
                           } else {
                             done({Verdict::kOverloaded, 1});
                           }
                         } else if (*count > per_minute_) {
                           done({Verdict::kLimited, static_cast<int>(60 - seconds % 60)});
                         } else {
                           done({Verdict::kAllowed, 0});
                         }
                       });
}

}  // namespace leadflow::ingest
