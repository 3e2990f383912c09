#include "ingest/readiness.h"

namespace leadflow::ingest {

Readiness::Readiness(std::function<absl::Status()> check, std::chrono::milliseconds interval)
    : check_(std::move(check)), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

Readiness::~Readiness() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

absl::Status Readiness::Current() const {
  std::lock_guard lock(mutex_);
  return down_.ok() ? current_ : down_;
}

void Readiness::MarkDown(absl::Status reason) {
  std::lock_guard lock(mutex_);
  if (down_.ok()) {
    down_ = reason.ok() ? absl::UnavailableError("down") : std::move(reason);
  }
}

absl::Status Readiness::CheckNow() {
  absl::Status status = check_();
  std::lock_guard lock(mutex_);
  current_ = status;
  return down_.ok() ? status : down_;
}

void Readiness::Loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    absl::Status status = check_();
    lock.lock();
    current_ = std::move(status);
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace leadflow::ingest
