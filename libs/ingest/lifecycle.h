#pragma once

#include <atomic>
#include <chrono>
#include <functional>

#include "absl/status/status.h"
#include "http/server.h"
#include "ingest/readiness.h"
#include "kafka/producer.h"

namespace leadflow::ingest {

/// The one start-up and shutdown order of every ingestion service:
/// start: operations server (probes answer "not ready" until the checks pass), readiness
/// check, public server;
/// stop (SIGTERM/SIGINT, or a fatal error): readiness false at once → keep serving for
/// `unready_delay` so that load balancers polling /readyz stop sending (skipped after a fatal
/// error) → stop accepting and answer what is in flight (the public server's grace) → release
/// what feeds the producer (Redis) → flush Kafka → stop the operations server. A fatal error makes
/// Run() return 1 so that the orchestrator restarts the process; a clean stop returns 0.
class Lifecycle {
 public:
  struct Parts {
    http::Server* public_server = nullptr;  // handle_signals on, operations_routes off
    http::Server* ops_server = nullptr;
    Readiness* readiness = nullptr;
    kafka::Producer* producer = nullptr;
    std::chrono::milliseconds flush_timeout{5000};
    /// On a clean stop, how long the public server goes on serving after readiness turned
    /// false, before it stops accepting (0: stop accepting at once).
    std::chrono::milliseconds unready_delay{0};
    /// Runs after the public server stopped and before the flush (e.g. stop the Redis client,
    /// whose callbacks may still publish). It must not destroy anything the operations server
    /// reads (metric callbacks): that server serves /metrics until Run() returns.
    std::function<void()> before_flush;
    /// On a clean stop, runs once readiness is false and before the public server drains, so
    /// that requests held for a later answer are answered while it still can send them.
    std::function<void()> before_drain;
  };
  explicit Lifecycle(Parts parts) : parts_(std::move(parts)) {}

  /// Not ready from now on, and Run() returns 1. Thread-safe, returns at once (safe from a
  /// librdkafka callback).
  void Fatal(const absl::Status& status);

  /// Serves until stopped; returns the process exit code.
  int Run();

 private:
  Parts parts_;
  std::atomic<bool> fatal_{false};
};

}  // namespace leadflow::ingest
