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
  std::string kafka_brokers;
  std::chrono::milliseconds delivery_timeout{3000};
  redis::Options redis;
  ServiceOptions service;
  std::string forms_file;
  log::Options log;
};

/// Reads and validates the settings; problems are collected in `reader` (FinishOrExit reports
/// them). The forms file is read here too, so a broken one stops the start.
Settings ReadSettings(config::Reader& reader);

}  // namespace leadflow::webform
