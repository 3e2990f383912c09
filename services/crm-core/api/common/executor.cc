#include "crm-core/api/common/executor.h"

namespace leadflow::crm {

Executor::Executor(int threads, size_t max_queued) : max_queued_(max_queued) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Work(); });
  }
}

Executor::~Executor() { Stop(); }

void Executor::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

bool Executor::Submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || jobs_.size() >= max_queued_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    jobs_.push_back(std::move(job));
    queued_.store(static_cast<int64_t>(jobs_.size()), std::memory_order_relaxed);
  }
  wake_.notify_one();
  return true;
}

void Executor::Work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;  // stopping, and nothing left
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
      queued_.store(static_cast<int64_t>(jobs_.size()), std::memory_order_relaxed);
    }
    job();
  }
}

}  // namespace leadflow::crm
