#include "ingest/checkpoint.h"

#include "absl/strings/str_cat.h"

namespace leadflow::ingest {

absl::StatusOr<uint64_t> Checkpoint::Track(std::string cursor) {
  std::lock_guard lock(mutex_);
  if (entries_.size() >= max_outstanding_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(entries_.size(), " events waiting for Kafka; read again later"));
  }
  uint64_t ticket = next_ticket_++;
  entries_.push_back({ticket, std::move(cursor), State::kWaiting});
  return ticket;
}

void Checkpoint::Done(uint64_t ticket, bool acknowledged) {
  std::lock_guard lock(mutex_);
  if (entries_.empty() || ticket < entries_.front().ticket) {
    return;  // from before a Reset
  }
  uint64_t index = ticket - entries_.front().ticket;
  if (index >= entries_.size()) {
    return;
  }
  Entry& entry = entries_[index];
  if (entry.state != State::kWaiting) {
    return;
  }
  entry.state = acknowledged ? State::kAcknowledged : State::kFailed;
  if (!acknowledged) {
    failed_ = true;
  }
  while (!entries_.empty() && entries_.front().state == State::kAcknowledged) {
    advanced_ = std::move(entries_.front().cursor);
    entries_.pop_front();
  }
}

std::optional<std::string> Checkpoint::Committable() {
  std::lock_guard lock(mutex_);
  std::optional<std::string> cursor = std::move(advanced_);
  advanced_.reset();
  return cursor;
}

bool Checkpoint::NeedsRewind() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

void Checkpoint::Reset() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  advanced_.reset();
  failed_ = false;
}

size_t Checkpoint::outstanding() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace leadflow::ingest
