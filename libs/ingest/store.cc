#include "ingest/store.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ingest/client_ip.h"
#include "ingest/signature.h"

namespace leadflow::ingest {

namespace {

// Store::CountAndClaim in one step: KEYS = {rate-limit counter, claim key},
// ARGV = {limit, value, ttl}. Answers {count} when over the limit (nothing claimed), else
// {count, 1} when `value` was recorded, {count, 1, earlier} when something was already there.
// The counter gets the same 120 s expiry as CountRequest's.
constexpr char kCountAndClaim[] =
    "local count = redis.call('INCR', KEYS[1]) "
    "redis.call('EXPIRE', KEYS[1], 120) "
    "if count > tonumber(ARGV[1]) then return {count} end "
    "local earlier = redis.call('SET', KEYS[2], ARGV[2], 'NX', 'GET', 'EX', ARGV[3]) "
    "if earlier then return {count, 1, earlier} end "
    "return {count, 1}";

std::string Sha1Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 failed");
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

const std::string& CountAndClaimSha() {
  static const std::string sha = Sha1Hex(kCountAndClaim);
  return sha;
}

absl::StatusOr<Store::CountedClaim> ReadCountedClaim(
    const absl::StatusOr<std::vector<redis::Reply>>& replies) {
  if (!replies.ok()) {
    return replies.status();
  }
  const redis::Reply& reply = (*replies)[0];
  if (reply.type != redis::Reply::Type::kArray || reply.elements.empty() ||
      reply.elements.size() > 3 || reply.elements[0].type != redis::Reply::Type::kInteger) {
    return absl::InternalError("redis: the count-and-claim script answered something else");
  }
  Store::CountedClaim result;
  result.count = reply.elements[0].integer;
  result.claimed = reply.elements.size() > 1;
  if (reply.elements.size() == 3) {
    if (reply.elements[2].type != redis::Reply::Type::kString) {
      return absl::InternalError("redis: the count-and-claim script answered something else");
    }
    result.earlier = reply.elements[2].text;
  }
  return result;
}

}  // namespace

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
                           done(earlier.status());
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

void RedisStore::Pipeline(std::vector<redis::Command> commands, RepliesDone done) {
  int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  if (now < skip_until_.load()) {
    done(absl::UnavailableError("redis: backing off after a failure"));
    return;
  }
  client_->Submit(std::move(commands), [this, done = std::move(done)](
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
  redis::Command command = {"EVALSHA",
                            CountAndClaimSha(),
                            "2",
                            absl::StrCat(prefix, "rl:", client, ":", window),
                            absl::StrCat(prefix, kind, ":", key),
                            std::to_string(limit),
                            value,
                            std::to_string(ttl.count())};
  Pipeline({command}, [this, command, done = std::move(done)](
                          absl::StatusOr<std::vector<redis::Reply>> replies) mutable {
    // Redis forgot the script (restarted, SCRIPT FLUSH): send it whole, which caches it again.
    // Nothing ran: NOSCRIPT is answered before the script starts.
    if (!replies.ok() && absl::StrContains(replies.status().message(), "NOSCRIPT")) {
      command[0] = "EVAL";
      command[1] = kCountAndClaim;
      Pipeline({std::move(command)},
               [done = std::move(done)](absl::StatusOr<std::vector<redis::Reply>> replies) {
                 done(ReadCountedClaim(replies));
               });
      return;
    }
    done(ReadCountedClaim(replies));
  });
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
               absl::FailedPreconditionError("rate limited: nothing claimed"));
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
