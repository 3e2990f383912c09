#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "redis/pipelined_client.h"

namespace leadflow::ingest {

/// The fast-path state every ingestion service keeps in Redis: rate-limit counters, double
/// submit fingerprints and idempotency keys. Asynchronous, so that no HTTP thread waits on a
/// round trip; `done` runs once, on any thread, and must not block.
///
/// Failure policy (explicit, the same for every service):
/// - Unavailable / Internal (Redis down, slow or answering nonsense): the caller FAILS OPEN —
///   the rate limit lets the request through and deduplication falls back to deterministic
///   ids. Losing Redis must never lose a lead. Counted per operation.
/// - ResourceExhausted (our own queue towards Redis is full): the service is overloaded, not
///   Redis down. The caller answers 503 with Retry-After; the rate limit does NOT switch off.
class Store {
 public:
  using CountDone = std::function<void(absl::StatusOr<int64_t>)>;
  using ClaimDone = std::function<void(absl::StatusOr<std::optional<std::string>>)>;
  virtual ~Store() = default;
  /// Counts one request of `client` in the window numbered `window`; gives the count.
  virtual void CountRequest(const std::string& client, int64_t window, CountDone done) = 0;
  /// Records `value` under `key` for `ttl` unless something is recorded already; gives the
  /// earlier value, or std::nullopt when `value` was recorded. `kind` separates key spaces
  /// ("fp" for fingerprints, "idem" for idempotency keys).
  virtual void Claim(const std::string& kind, const std::string& key, const std::string& value,
                     std::chrono::seconds ttl, ClaimDone done) = 0;
  /// Removes what Claim recorded under `key`, only if it is still `value` (someone else's
  /// claim is left alone). `done` gets OK whether or not there was something to remove.
  virtual void Release(const std::string& kind, const std::string& key, const std::string& value,
                       std::function<void(absl::Status)> done) = 0;

  /// What CountAndClaim found.
  struct CountedClaim {
    /// CountRequest's count.
    int64_t count = 0;
    /// Whether the claim counts: only when the count was within the limit. Over the limit,
    /// `earlier` is empty and the request must not go on; a store that claims in the same
    /// step as it counts (RedisStore) leaves what it recorded (see RedisStore::CountAndClaim).
    bool claimed = false;
    /// Claim's answer when it ran: the earlier value, or std::nullopt when `value` was recorded.
    std::optional<std::string> earlier;
    /// The claim's own failure, when the count came back but the claim did not (e.g. Redis
    /// refusing SET NX GET): `earlier` is then meaningless, and the caller treats this as
    /// Claim's failure. The count, and so the rate limit, stand.
    absl::Status claim_status;
  };
  using CountClaimDone = std::function<void(absl::StatusOr<CountedClaim>)>;
  /// CountRequest(client, window) and Claim(kind, key, value, ttl) in one step: the rate limit
  /// and the idempotency claim of a request, so that a request costs one Redis round trip
  /// instead of two. The claim's answer counts only when the count is at most `limit`. A
  /// failure of the whole step is that of both (the policy above applies to both); when the
  /// count came back and only the claim failed, the result is OK with `claim_status` set.
  /// The default runs the two calls one after the other (no claim over the limit); RedisStore
  /// sends both in one round trip.
  virtual void CountAndClaim(const std::string& client, int64_t window, int64_t limit,
                             const std::string& kind, const std::string& key,
                             const std::string& value, std::chrono::seconds ttl,
                             CountClaimDone done);
};

/// Whether a Store failure is one to fail open on (see Store), as opposed to overload.
bool FailsOpen(const absl::Status& status);

/// Store in Redis through the auto-pipelining client: the commands of all concurrent requests
/// share round trips. After a failure Redis is left alone for `backoff`, so that an outage
/// costs requests nothing but the degraded path. Keys start with the client's prefix
/// (`<SERVICE>_REDIS_PREFIX`).
class RedisStore : public Store {
 public:
  explicit RedisStore(redis::PipelinedClient* client,
                      std::chrono::milliseconds backoff = std::chrono::milliseconds(1000));
  void CountRequest(const std::string& client, int64_t window, CountDone done) override;
  void Claim(const std::string& kind, const std::string& key, const std::string& value,
             std::chrono::seconds ttl, ClaimDone done) override;
  void Release(const std::string& kind, const std::string& key, const std::string& value,
               std::function<void(absl::Status)> done) override;
  /// INCR, EXPIRE and SET NX GET in one round trip. Over the limit, what SET recorded is left
  /// in place, not released: a concurrent request with the same key and value may already
  /// have taken it for its own and gone on, and deleting it then would unbind the key. Callers
  /// claim values that make this safe (webform-ingest: an Idempotency-Key's content
  /// fingerprint, or a fingerprint's candidate id that was never published). A SET answered
  /// with an error (Redis < 7.0) is reported in `claim_status`; the limit stands on INCR.
  void CountAndClaim(const std::string& client, int64_t window, int64_t limit,
                     const std::string& kind, const std::string& key, const std::string& value,
                     std::chrono::seconds ttl, CountClaimDone done) override;

 private:
  using RepliesDone = std::function<void(absl::StatusOr<std::vector<redis::Reply>>)>;
  /// Runs `commands` in one round trip. An error reply fails the whole call (Internal) unless
  /// `error_replies`, when `done` gets it among the replies.
  void Pipeline(std::vector<redis::Command> commands, RepliesDone done, bool error_replies = false);

  redis::PipelinedClient* client_;
  const std::chrono::milliseconds backoff_;
  std::atomic<int64_t> skip_until_{0};  // steady_clock ticks
};

/// Requests per client and minute, over a Store. IPv6 clients are counted per /64
/// (RateLimitSubject).
class RateLimiter {
 public:
  enum class Verdict {
    kAllowed,
    kLimited,     // over the limit: 429, Retry-After = retry_after_seconds
    kOverloaded,  // our queue towards Redis is full: 503, Retry-After
    kFailedOpen,  // Redis unavailable: allowed, counted
  };
  struct Decision {
    Verdict verdict = Verdict::kAllowed;
    int retry_after_seconds = 0;
  };
  /// `per_minute` 0 turns the limit off (every request kAllowed, no Redis call).
  RateLimiter(Store* store, int64_t per_minute) : store_(store), per_minute_(per_minute) {}
  void Check(const std::string& client, std::chrono::system_clock::time_point now,
             std::function<void(Decision)> done);
  bool enabled() const { return per_minute_ > 0; }

  /// Store::Claim's arguments, for CheckAndClaim.
  struct ClaimRequest {
    std::string kind;
    std::string key;
    std::string value;
    std::chrono::seconds ttl{0};
  };
  using ClaimResult = absl::StatusOr<std::optional<std::string>>;
  /// Check and, when the request may go on, the claim, in one Store step
  /// (Store::CountAndClaim): `done` gets the decision and, for kAllowed and kFailedOpen,
  /// Store::Claim's answer (for kFailedOpen, the Redis failure: the claim failed open too; for
  /// kAllowed, possibly the claim's own failure while the count decided the limit). For
  /// kLimited and kOverloaded the claim does not count and the second argument is an error.
  /// With the limit off, only the claim is made (kAllowed).
  void CheckAndClaim(const std::string& client, std::chrono::system_clock::time_point now,
                     ClaimRequest claim, std::function<void(Decision, ClaimResult)> done);

 private:
  Store* store_;
  const int64_t per_minute_;
};

}  // namespace leadflow::ingest
