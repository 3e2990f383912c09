#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace leadflow::ingest {

/// Whether the service can take traffic, decided on its own thread: the check (e.g. a Kafka
/// metadata round trip) runs every `interval` there, and GET /readyz only reads the last
/// answer, so a slow broker never ties up an HTTP thread. A fatal error or shutdown turns it
/// false for good.
class Readiness {
 public:
  Readiness(std::function<absl::Status()> check, std::chrono::milliseconds interval);
  ~Readiness();
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;

  /// The last check's answer (Unavailable until the first check ran), or the fatal error.
  absl::Status Current() const;
  /// Not ready from now on, with this reason (a fatal error, shutting down).
  void MarkDown(absl::Status reason);
  /// Runs the check now and waits for it (start-up).
  absl::Status CheckNow();

 private:
  void Loop();

  std::function<absl::Status()> check_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  absl::Status current_ = absl::UnavailableError("not checked yet");
  absl::Status down_;  // OK while not marked down
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace leadflow::ingest
