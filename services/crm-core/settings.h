#pragma once

#include <chrono>
#include <map>
#include <string>

#include "config/config.h"
#include "crm-core/api/common/auth.h"
#include "crm-core/domain/rules/rule_settings.h"
#include "log/log.h"
#include "pg/migrations.h"

namespace leadflow::crm {

/// crm-core's whole configuration, read once from the environment at start.
struct Settings {
  bool run_api = true;
  bool run_consumer = true;
  std::string database_url;
  int database_pool_size = 8;
  size_t api_queue_max = 256;
  std::string grpc_address;
  // TLS of the gRPC API: off when both are empty. With a client CA, clients must show a
  // certificate it signed (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Without TLS the API listens only on loopback, unless plaintext is allowed explicitly.
  bool grpc_plaintext = false;
  int http_port = 0;
  std::string http_address;
  std::map<std::string, Role> api_keys;
  // The key of page token signatures; empty: the database's (migration 0023).
  std::string page_token_key;
  std::string kafka_brokers;
  std::string group_id;
  size_t batch_max_events = 1000;
  std::chrono::milliseconds batch_max_wait{50};
  size_t batch_max_identity_locks = 8192;
  int batch_attempts_before_split = 3;
  // The classic → simple switch job (inbound/mode_switch.h).
  int64_t mode_switch_batch = 200;
  std::chrono::milliseconds mode_switch_poll{1000};
  // The unidentified calls' retention (inbound/call_retention.h).
  int unidentified_calls_retention_days = 90;
  int unidentified_calls_prune_batch = 1000;
  std::chrono::milliseconds unidentified_calls_prune_interval{60000};
  std::chrono::milliseconds database_statement_timeout{5000};
  std::chrono::milliseconds database_acquire_timeout{2000};
  // `crm-core migrate`: lock_timeout and retries of each migration (docs/operations.md).
  pg::MigrationOptions migration;
  std::string redis_host;
  int redis_port = 0;
  std::string redis_prefix;
  RuleSettings rules;
  std::string default_region = "FR";
  log::Options log;
};

/// True for an address only this host can reach: 127.0.0.0/8, ::1, localhost, a unix socket.
bool IsLoopbackAddress(const std::string& address);

/// `command` is "serve" or "migrate": migrate needs only the database.
Settings ReadSettings(config::Reader& reader, const std::string& command);

}  // namespace leadflow::crm
