#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace leadflow::ingest {

/// For pull channels (an IMAP poller, an Asterisk AMI client): the position the channel may
/// save and resume from only advances once Kafka acknowledged every event read before it, so a
/// restart re-reads (and event ids deduplicate) rather than skips.
///
///   auto ticket = checkpoint.Track("uid:4711");   // before producing the event
///   … producer->Produce(…, [&](result) { checkpoint.Done(*ticket, result.status.ok()); });
///   if (auto cursor = checkpoint.Committable()) Save(*cursor);
///
/// A failed event blocks the cursor until the channel re-reads from the last committable
/// position (Reset). Bounded: at most `max_outstanding` events tracked at once.
class Checkpoint {
 public:
  explicit Checkpoint(size_t max_outstanding) : max_outstanding_(max_outstanding) {}

  /// Registers the next event read, in reading order; its cursor is where to resume after it.
  /// ResourceExhausted when `max_outstanding` events are waiting: stop reading for a while.
  absl::StatusOr<uint64_t> Track(std::string cursor);

  /// Kafka's answer for a tracked event. Thread-safe (delivery callbacks run on another thread).
  void Done(uint64_t ticket, bool acknowledged);

  /// The cursor after the longest acknowledged prefix, when it moved since the last call.
  std::optional<std::string> Committable();

  /// True when an event failed: re-read from the last committed cursor, then Reset().
  bool NeedsRewind() const;
  /// Forgets everything tracked (after a rewind).
  void Reset();

  size_t outstanding() const;

 private:
  enum class State { kWaiting, kAcknowledged, kFailed };
  struct Entry {
    uint64_t ticket;
    std::string cursor;
    State state;
  };
  const size_t max_outstanding_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // in reading order, tickets consecutive
  uint64_t next_ticket_ = 0;
  std::optional<std::string> advanced_;
  bool failed_ = false;
};

}  // namespace leadflow::ingest
