#pragma once

#include <chrono>
#include <string>

#include "config/config.h"
#include "http/server.h"
#include "log/log.h"
#include "redis/client.h"
#include "webform-ingest/service.h"

namespace leadflow::webform {

/// Everything webform-ingest reads from its environment (see docs/webform-ingest.md).
struct Settings {
  http::ServerOptions http;
  /// The operations server: /healthz, /readyz, /metrics, never on the public port.
  http::ServerOptions ops;
  std::string kafka_brokers;
  std::chrono::milliseconds delivery_timeout{3000};
  /// On SIGTERM, how long the public port goes on serving once /readyz says 503.
  std::chrono::milliseconds shutdown_delay{0};
  redis::Options redis;
  /// Redis commands waiting at most (each holds a request's state); beyond, 503.
  size_t redis_max_pending = 1024;
  ServiceOptions service;
  std::string forms_file;
  log::Options log;
};

/// Reads and validates the settings; problems are collected in `reader` (FinishOrExit reports
/// them). The forms file is read here too, so a broken one stops the start.
Settings ReadSettings(config::Reader& reader);

}  // namespace leadflow::webform
