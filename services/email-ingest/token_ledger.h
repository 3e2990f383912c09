#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace leadflow::email {

/// Mailgun's webhook tokens, each used at most once for an accepted message. A token counts as
/// used only once its event is durable (Kafka acknowledged it): a request refused with 503 while
/// Kafka is down is retried by Mailgun with the same token and must then be taken, not refused as
/// a replay. The token is bound to the body it came with, so that a captured signature cannot
/// carry another message while its first request is retried.
///
/// Bounded: at most `capacity` tokens; past it the oldest settled token is forgotten (counted in
/// evicted()) — a replay of it is then published again and applied once by crm-core, whose event
/// id dedupe makes the second copy harmless.
class TokenLedger {
 public:
  enum class Claim {
    kFresh,     // first sight (or a retry after a failed publish): go on, then Accept or Release
    kPending,   // the same request is being published right now: answer "retry later"
    kAccepted,  // already accepted: answer as accepted, publish nothing
    kMismatch,  // the token came with another body: forged
  };
  TokenLedger(size_t capacity, std::chrono::seconds ttl) : capacity_(capacity), ttl_(ttl) {}

  /// `digest`: of the request body. kFresh marks the token pending.
  Claim Begin(const std::string& token, const std::string& digest,
              std::chrono::steady_clock::time_point now);
  /// The event is durable: the token is used for `ttl` from now.
  void Accept(const std::string& token, std::chrono::steady_clock::time_point now);
  /// The publish failed: the token may be used again (by Mailgun's retry).
  void Release(const std::string& token);

  size_t size() const;
  uint64_t evicted() const;

 private:
  enum class State { kPending, kAccepted };
  struct Entry {
    State state;
    std::string digest;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator position;
  };
  void ExpireLocked(std::chrono::steady_clock::time_point now);

  const size_t capacity_;
  const std::chrono::seconds ttl_;
  mutable std::mutex mutex_;
  std::list<std::string> order_;  // oldest first: insertion order, every ttl the same
  std::unordered_map<std::string, Entry> entries_;
  uint64_t evicted_ = 0;
};

}  // namespace leadflow::email
