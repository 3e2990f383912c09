#pragma once

#include <chrono>
#include <condition_variable>
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
  /// Connections; callers on several threads each take one, so one slow round trip does not
  /// hold up the others.
  int connections = 1;
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

/// The commands in Redis's protocol (each an array of bulk strings), byte for byte what
/// hiredis's redisFormatCommandArgv writes for each, one after the other.
std::string FormatCommands(const std::vector<Command>& commands);

/// Redis connections that send a whole batch of commands in one round trip and reconnect on the
/// next call after a broken connection. Thread-safe: each call takes a connection of its own
/// (waiting when all `Options::connections` are busy).
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
  struct ContextDeleter {
    void operator()(redisContext* context) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
  absl::StatusOr<ContextPtr> Connect() const;
  absl::StatusOr<std::vector<Reply>> PipelineOn(ContextPtr& context,
                                                const std::vector<Command>& commands);

  Options options_;
  std::mutex mutex_;
  std::condition_variable available_;
  int checked_out_ = 0;
  std::vector<ContextPtr> idle_;  // connected; a broken one is dropped, not returned
};

}  // namespace leadflow::redis
