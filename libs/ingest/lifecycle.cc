#include "ingest/lifecycle.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace leadflow::ingest {

void Lifecycle::Fatal(const absl::Status& status) {
  if (fatal_.exchange(true)) {
    return;
  }
  spdlog::error("fatal: {}; not ready, stopping so that the process is restarted",
                status.ToString());
  parts_.readiness->MarkDown(status);
  parts_.public_server->Stop();
}

int Lifecycle::Run() {
  if (auto status = parts_.ops_server->Start(); !status.ok()) {
    spdlog::error("{}", status.ToString());
    return 1;
  }
  // Readiness turns false before the public server stops accepting and drains (which takes
  // up to its shutdown grace), not after: meanwhile /readyz must already say 503.
  parts_.public_server->SetBeforeShutdown([this] {
    parts_.readiness->MarkDown(absl::UnavailableError("shutting down"));
    if (!fatal_ && parts_.unready_delay > std::chrono::milliseconds(0)) {
      spdlog::info("shutdown: not ready; serving {} ms more before draining",
                   parts_.unready_delay.count());
      std::this_thread::sleep_for(parts_.unready_delay);
    }
    if (parts_.before_drain) {
      parts_.before_drain();
    }
  });
  if (auto status = parts_.public_server->Start(); !status.ok()) {
    spdlog::error("{}", status.ToString());
    return 1;
  }
  absl::Status stopped = parts_.public_server->Run();  // until a signal or Fatal()
  if (!stopped.ok()) {
    spdlog::warn("shutdown: {}", stopped.ToString());
  }
  if (parts_.before_flush) {
    parts_.before_flush();
  }
  if (auto status = parts_.producer->Flush(parts_.flush_timeout); !status.ok()) {
    spdlog::warn("kafka flush: {}", status.ToString());
  }
  parts_.ops_server->Stop();
  (void)parts_.ops_server->Run();
  return fatal_ ? 1 : 0;
}

}  // namespace leadflow::ingest
