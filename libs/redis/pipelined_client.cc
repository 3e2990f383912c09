#include "redis/pipelined_client.h"

namespace leadflow::redis {

PipelinedClient::PipelinedClient(Options options, size_t max_pending)
    : client_([&] {
        options.connections = 1;  // one round trip at a time; its size grows with the load
        return options;
      }()),
      max_pending_(max_pending) {
  worker_ = std::thread([this] { Loop(); });
}

PipelinedClient::~PipelinedClient() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  worker_.join();
}

void PipelinedClient::Submit(std::vector<Command> commands, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() < max_pending_ && !stopping_) {
      queue_.push_back({std::move(commands), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done(absl::ResourceExhaustedError("redis: too many commands waiting"));
}

void PipelinedClient::Loop() {
  while (true) {
    std::deque<Pending> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping, and everything submitted has been answered
      }
      batch.swap(queue_);
    }
    std::vector<Command> all;
    for (Pending& pending : batch) {
      for (Command& command : pending.commands) {
        all.push_back(std::move(command));
      }
    }
    auto replies = client_.Pipeline(all);
    size_t next = 0;
    for (Pending& pending : batch) {
      if (!replies.ok()) {
        pending.done(replies.status());
        continue;
      }
      size_t count = pending.commands.size();
      std::vector<Reply> own(std::make_move_iterator(replies->begin() + next),
                             std::make_move_iterator(replies->begin() + next + count));
      next += count;
      pending.done(std::move(own));
    }
  }
}

}  // namespace leadflow::redis
