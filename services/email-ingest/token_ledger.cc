#include "email-ingest/token_ledger.h"

namespace leadflow::email {

TokenLedger::Claim TokenLedger::Begin(const std::string& token, const std::string& digest,
                                      std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  ExpireLocked(now);
  if (auto it = entries_.find(token); it != entries_.end()) {
    if (it->second.digest != digest) return Claim::kMismatch;
    return it->second.state == State::kPending ? Claim::kPending : Claim::kAccepted;
  }
  while (entries_.size() >= capacity_ && !order_.empty()) {
    // The oldest entry goes, pending or not: a pending one is answered anyway, and only loses
    // the protection against a concurrent copy of its own request (applied once downstream).
    entries_.erase(order_.front());
    order_.pop_front();
    ++evicted_;
  }
  order_.push_back(token);
  entries_.emplace(token, Entry{.state = State::kPending,
                                .digest = digest,
                                .expires = now + ttl_,
                                .position = std::prev(order_.end())});
  return Claim::kFresh;
}

void TokenLedger::Accept(const std::string& token, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return;  // evicted meanwhile
  it->second.state = State::kAccepted;
  // Kept in insertion order: accepted within the delivery timeout, so the order barely moves.
  it->second.expires = now + ttl_;
}

void TokenLedger::Release(const std::string& token) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return;
  order_.erase(it->second.position);
  entries_.erase(it);
}

void TokenLedger::ExpireLocked(std::chrono::steady_clock::time_point now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    if (it != entries_.end() && it->second.expires > now) break;
    if (it != entries_.end()) entries_.erase(it);
    order_.pop_front();
  }
}

size_t TokenLedger::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

uint64_t TokenLedger::evicted() const {
  std::lock_guard lock(mutex_);
  return evicted_;
}

}  // namespace leadflow::email
