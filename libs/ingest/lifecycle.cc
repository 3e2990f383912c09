#include "ingest/lifecycle.h"

#include <spdlog/spdlog.h>

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
  if (auto status = parts_.public_server->Start(); !status.ok()) {
    spdlog::error("{}", status.ToString());
    return 1;
  }
  absl::Status stopped = parts_.public_server->Run();  // until a signal or Fatal()
  parts_.readiness->MarkDown(absl::UnavailableError("shutting down"));
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
