#pragma once

#include <chrono>
#include <string>

#include "config/config.h"
#include "http/server.h"
#include "log/log.h"
#include "redis/client.h"
#include "telephony-ingest/ami.h"
#include "telephony-ingest/service.h"

namespace leadflow::telephony {

/// Everything telephony-ingest reads from its environment (see docs/telephony-ingest.md).
struct Settings {
  http::ServerOptions http;
  /// The operations server: /healthz, /readyz, /metrics, never on the public port.
  http::ServerOptions ops;
  std::string kafka_brokers;
  std::chrono::milliseconds delivery_timeout{3000};
  std::chrono::milliseconds kafka_linger{1};  // librdkafka's linger.ms (0–1000)
  /// On SIGTERM, how long the public port goes on serving once /readyz says 503.
  std::chrono::milliseconds shutdown_delay{0};
  ServiceOptions service;
  /// How often parked requests look in the call store (TelephonyService::PollParked).
  std::chrono::milliseconds park_poll{250};
  /// Set when TELEPHONY_REDIS_HOST is: the state of calls shared by the replicas.
  std::optional<redis::Options> redis;
  /// Set when TELEPHONY_AMI_HOST is.
  std::optional<AmiOptions> ami;
  log::Options log;
};

/// Reads and validates the settings; problems are collected in `reader`.
Settings ReadSettings(config::Reader& reader);

}  // namespace leadflow::telephony
