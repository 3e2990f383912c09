// crm-core: consumes inbound events into CRM records and serves them over gRPC.
//   crm-core migrate   apply the schema and exit (a Kubernetes Job, or the local stack's start)
//   crm-core [serve]   run the roles of CRM_ROLES until SIGTERM
// Configuration: environment variables, listed by --help.
// This file maps the roles onto their components (docs/architecture.md, "Layers") and nothing
// else: the consumer is inbound/component.h, the API api/server.h, the schema store/schema.h.

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "crm-core/api/server.h"
#include "crm-core/inbound/call_retention.h"
#include "crm-core/inbound/component.h"
#include "crm-core/inbound/mode_switch.h"
#include "crm-core/settings.h"
#include "crm-core/store/probe.h"
#include "crm-core/store/schema.h"
#include "http/server.h"
#include "metrics/metrics.h"

namespace leadflow::crm {
namespace {

int Migrate(const Settings& settings) {
  auto report = MigrateSchema(settings.database_url, settings.migration);
  if (!report.ok()) {
    spdlog::error("migration failed: {}", report.status().ToString());
    return 1;
  }
  spdlog::info(
      "schema up to date ({} migrations applied now, {} lock timeouts retried, {} invalid "
      "indexes rebuilt{})",
      report->applied, report->lock_retries, report->invalid_indexes_dropped,
      report->bridged_from.empty()
          ? std::string()
          : ", bridged from release " + report->bridged_from + "'s schema");
  return 0;
}

int Serve(const Settings& settings) {
  // Signals are taken by sigwait below, never by a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (absl::Status status = CheckSchema(settings.database_url); !status.ok()) {
    spdlog::error("database: {}", status.ToString());
    return 1;
  }
  metrics::Registry registry;
  InboundCounters counters(registry);
  std::atomic<bool> stop{false};

  std::unique_ptr<InboundConsumer> inbound;
  if (settings.run_consumer) {
    auto started = InboundConsumer::Start(
        InboundOptions{.database_url = settings.database_url,
                       .kafka_brokers = settings.kafka_brokers,
                       .group_id = settings.group_id,
                       .redis_host = settings.redis_host,
                       .redis_port = settings.redis_port,
                       .processor = {.rules = settings.rules,
                                     .redis_prefix = settings.redis_prefix,
                                     .max_identity_locks = settings.batch_max_identity_locks,
                                     .attempts_before_split = settings.batch_attempts_before_split},
                       .loop = {.batch_max_events = settings.batch_max_events,
                                .batch_max_wait = settings.batch_max_wait}},
        counters, stop);
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      return 1;
    }
    inbound = std::move(*started);
  }
  // The classic → simple switch job runs beside the consumer (every consumer process may run it;
  // the job's row lock lets one step run at a time).
  ModeSwitchCounters mode_switch_counters(registry);
  std::unique_ptr<ModeSwitchRunner> mode_switch;
  if (settings.run_consumer) {
    mode_switch = std::make_unique<ModeSwitchRunner>(
        ModeSwitchOptions{.database_url = settings.database_url,
                          .batch_leads = settings.mode_switch_batch,
                          .poll = settings.mode_switch_poll,
                          .max_identities = settings.rules.max_inbound_identities},
        mode_switch_counters, stop);
  }
  // The unidentified calls' retention, beside the consumer too (every consumer process may run
  // it: each statement deletes a bounded slice, and two passes at once only find less to do).
  CallRetentionCounters retention_counters(registry);
  std::unique_ptr<CallRetentionRunner> retention;
  if (settings.run_consumer) {
    retention = std::make_unique<CallRetentionRunner>(
        CallRetentionOptions{.database_url = settings.database_url,
                             .retention_days = settings.unidentified_calls_retention_days,
                             .batch = settings.unidentified_calls_prune_batch,
                             .interval = settings.unidentified_calls_prune_interval},
        retention_counters, stop);
  }
  auto stop_consumer = [&] {
    stop = true;
    if (inbound) {
      inbound->Join();
    }
    if (mode_switch) {
      mode_switch->Join();
    }
    if (retention) {
      retention->Join();
    }
  };

  std::unique_ptr<ApiServer> api;
  if (settings.run_api) {
    auto started = ApiServer::Start(
        ApiOptions{.database_url = settings.database_url,
                   .database_pool_size = settings.database_pool_size,
                   .database_acquire_timeout = settings.database_acquire_timeout,
                   .database_statement_timeout = settings.database_statement_timeout,
                   .queue_max = settings.api_queue_max,
                   .grpc_address = settings.grpc_address,
                   .tls_cert_file = settings.tls_cert_file,
                   .tls_key_file = settings.tls_key_file,
                   .tls_client_ca_file = settings.tls_client_ca_file,
                   .keys = settings.api_keys,
                   .page_token_key = settings.page_token_key,
                   .default_region = settings.default_region,
                   .max_record_identities = settings.rules.max_inbound_identities},
        registry);
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      stop_consumer();
      return 1;
    }
    api = std::move(*started);
  }

  // Operations HTTP: /healthz, /readyz (the database and Kafka answer), /metrics. Two threads,
  // and the database probe has its own connection with bounded waits: slow API calls holding
  // the pool never hold the probes.
  DatabaseProbe probe(settings.database_url, std::chrono::seconds(2));
  http::Server ops({.address = settings.http_address, .port = settings.http_port, .threads = 2},
                   &registry);
  ops.SetReadinessCheck([&]() -> absl::Status {
    if (absl::Status database = probe.Check(); !database.ok()) {
      return database;
    }
    if (inbound) {
      return inbound->CheckConnected(std::chrono::seconds(2));
    }
    return absl::OkStatus();
  });
  if (absl::Status status = ops.Start(); !status.ok()) {
    spdlog::error("operations HTTP: {}", status.ToString());
    stop_consumer();
    return 1;
  }
  spdlog::info("operations HTTP on {}:{}", settings.http_address, ops.port());
  std::thread ops_thread([&] { ops.Run().IgnoreError(); });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("{}: shutting down", strsignal(signal_number));
  if (api) {
    api->Shutdown();
  }
  stop_consumer();
  ops.Stop();
  ops_thread.join();
  spdlog::info(
      "stopped: {} events applied in {} batches (retries counted), {} leads and {} activities "
      "created, {} duplicates skipped by the database",
      static_cast<int64_t>(counters.events_applied.Value()),
      static_cast<int64_t>(counters.batches.Value()),
      static_cast<int64_t>(counters.leads_created.Value()),
      static_cast<int64_t>(counters.activities_created.Value()),
      static_cast<int64_t>(counters.duplicates_database.Value()));
  return 0;
}

}  // namespace
}  // namespace leadflow::crm

int main(int argc, char** argv) {
  using namespace leadflow;
  std::string command = "serve";
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] != '-') {
      command = argv[i];
    }
  }
  config::Reader reader("crm-core", "LeadFlow's CRM core. Commands: serve (default), migrate",
                        {"CRM_"});
  crm::Settings settings = crm::ReadSettings(reader, command);
  config::FinishOrExit(reader, argc, argv);
  log::Init("crm-core", settings.log);
  if (command == "migrate") {
    return crm::Migrate(settings);
  }
  if (command != "serve") {
    spdlog::error("unknown command '{}' (serve or migrate)", command);
    return 2;
  }
  return crm::Serve(settings);
}
