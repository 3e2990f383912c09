#include "redis/pipelined_client.h"

#include <algorithm>

namespace leadflow::redis {

PipelinedClient::PipelinedClient(Options options, int callback_threads, size_t max_pending)
    : client_([&] {
        options.connections = 1;  // one round trip at a time; its size grows with the load
        return options;
      }()),
      max_pending_(max_pending) {
  for (int i = 0; i < callback_threads; ++i) {
    callback_threads_.emplace_back([this] { RunCallbacks(); });
  }
  worker_ = std::thread([this] { Loop(); });
}

PipelinedClient::~PipelinedClient() { Shutdown(); }

void PipelinedClient::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    worker_.join();  // every submission has been answered into the callback queue
    {
      std::lock_guard lock(callbacks_mutex_);
      callbacks_stopping_ = true;
    }
    callbacks_wake_.notify_all();
    for (std::thread& thread : callback_threads_) {
      thread.join();
    }
  });
}

void PipelinedClient::RunCallbacks() {
  while (true) {
    std::function<void()> callback;
    {
      std::unique_lock lock(callbacks_mutex_);
      callbacks_wake_.wait(lock, [this] { return callbacks_stopping_ || !callbacks_.empty(); });
      if (callbacks_.empty()) {
        return;  // stopping, and every callback has run
      }
      callback = std::move(callbacks_.front());
      callbacks_.pop_front();
    }
    callback();
    outstanding_.fetch_sub(1);
  }
}

void PipelinedClient::Submit(std::vector<Command> commands, Done done) {
  Enqueue({.commands = std::move(commands), .done = std::move(done)});
}

void PipelinedClient::SubmitBuilt(std::function<std::vector<Command>()> build, Done done) {
  Enqueue({.done = std::move(done), .build = std::move(build)});
}

void PipelinedClient::SubmitKeeping(std::vector<Command> commands, DoneKeeping done) {
  Enqueue({.commands = std::move(commands), .done_keeping = std::move(done)});
}

void PipelinedClient::Enqueue(Pending pending) {
  // Counted until the callback has run, so that a slow consumer of answers also pushes back.
  if (outstanding_.fetch_add(1) < max_pending_) {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(pending));
      wake_.notify_one();
      return;
    }
  }
  outstanding_.fetch_sub(1);
  absl::Status refused = absl::ResourceExhaustedError("redis: too many commands waiting");
  if (pending.done_keeping) {
    pending.done_keeping(refused, std::move(pending.commands));
    return;
  }
  pending.done(refused);
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
      if (pending.build) {
        pending.commands = pending.build();
      }
      for (Command& command : pending.commands) {
        all.push_back(std::move(command));
      }
    }
    auto replies = client_.Pipeline(all);
    // The commands back to their submissions, for those that keep them.
    size_t sent = 0;
    for (Pending& pending : batch) {
      for (Command& command : pending.commands) {
        if (pending.done_keeping) {
          command = std::move(all[sent]);
        }
        ++sent;
      }
    }
    std::vector<std::function<void()>> answers;
    answers.reserve(batch.size());
    size_t next = 0;
    for (Pending& pending : batch) {
      absl::StatusOr<std::vector<Reply>> own = std::vector<Reply>();
      if (replies.ok()) {
        size_t count = pending.commands.size();
        own = std::vector<Reply>(std::make_move_iterator(replies->begin() + next),
                                 std::make_move_iterator(replies->begin() + next + count));
        next += count;
      } else {
        own = replies.status();
      }
      if (pending.done_keeping) {
        answers.push_back([done = std::move(pending.done_keeping), own = std::move(own),
                           commands = std::move(pending.commands)]() mutable {
          done(std::move(own), std::move(commands));
        });
      } else {
        answers.push_back([done = std::move(pending.done), own = std::move(own)]() mutable {
          done(std::move(own));
        });
      }
    }
    Answer(std::move(answers));
  }
}

void PipelinedClient::Answer(std::vector<std::function<void()>> answers) {
  if (callback_threads_.empty()) {
    for (auto& answer : answers) {
      answer();
      outstanding_.fetch_sub(1);
    }
    return;
  }
  {
    std::lock_guard lock(callbacks_mutex_);
    for (auto& answer : answers) {
      callbacks_.push_back(std::move(answer));
    }
  }
  callbacks_wake_.notify_all();
}

}  // namespace leadflow::redis
