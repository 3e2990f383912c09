#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct redisContext;

namespace leadflow::redis {

struct Options {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{500};  // connect and each round trip
  /// Prepended to every key by the caller's convention (e.g. tests keep apart this way).
  std::string key_prefix;
};

/// One reply of a pipelined command, flattened to what LeadFlow uses.
struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string text;             // kString, kStatus, kError
  int64_t integer = 0;          // kInteger
  std::vector<Reply> elements;  // kArray
  bool IsNil() const { return type == Type::kNil; }
};

using Command = std::vector<std::string>;

/// A Redis connection that sends a whole batch of commands in one round trip and reconnects on
/// the next call after a broken connection. Thread-safe (calls are serialised).
///
/// Redis is a fast path in LeadFlow, never the source of truth: callers degrade when it fails.
class Client {
 public:
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends every command, then reads every reply. A Redis error reply is a kError element, not
  /// a failed status; a failed status means the connection failed (Unavailable).
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Command>& commands);
  absl::StatusOr<Reply> Run(const Command& command);

  const Options& options() const { return options_; }

 private:
  absl::Status ConnectLocked();
  void DropLocked();

  Options options_;
  std::mutex mutex_;
  redisContext* context_ = nullptr;
};

}  // namespace leadflow::redis
