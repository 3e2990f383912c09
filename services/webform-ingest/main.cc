// webform-ingest: receives web form submissions over HTTP and publishes them to Kafka,
// answering 202 only once Kafka acknowledged the event.

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "config/config.h"
#include "http/server.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "redis/client.h"
#include "redis/pipelined_client.h"
#include "webform-ingest/adapters.h"
#include "webform-ingest/service.h"
#include "webform-ingest/settings.h"

int main(int argc, char** argv) {
  using namespace leadflow;
  config::Reader reader("webform-ingest", "web form submissions to Kafka", {"WEBFORM_"});
  webform::Settings settings = webform::ReadSettings(reader);
  config::FinishOrExit(reader, argc, argv);
  log::Init("webform-ingest", settings.log);

  auto producer = kafka::Producer::Create({.brokers = settings.kafka_brokers,
                                           .client_id = "webform-ingest",
                                           .delivery_timeout = settings.delivery_timeout});
  if (!producer.ok()) {
    spdlog::error("{}", producer.status().ToString());
    return 1;
  }
  // Fail fast: a service that cannot reach Kafka would answer 503 to everything.
  if (auto status = (*producer)->CheckConnected(std::chrono::seconds(10)); !status.ok()) {
    spdlog::error("kafka at {}: {}", settings.kafka_brokers, status.ToString());
    return 1;
  }
  {
    redis::Client probe(settings.redis);
    if (auto ping = probe.Run({"PING"}); !ping.ok()) {
      spdlog::warn("{}: rate limits open and double submits by time bucket until it is back",
                   ping.status().ToString());
    }
  }
  // All requests' Redis commands share round trips; no HTTP thread waits on Redis.
  auto redis_client =
      std::make_unique<redis::PipelinedClient>(settings.redis, settings.http.threads);

  metrics::Registry registry;
  registry.AddCallbackGauge("webform_kafka_in_flight",
                            "Events waiting for Kafka's acknowledgement.",
                            [producer = producer->get()] { return producer->InFlight(); });
  webform::KafkaPublisher publisher(producer->get());
  webform::RedisStore store(redis_client.get());
  webform::WebformService service(settings.service, &publisher, &store, &registry);

  auto server = std::make_unique<http::Server>(settings.http, &registry);
  service.Register(server.get());
  server->SetReadinessCheck([producer = producer->get()] {
    return producer->CheckConnected(std::chrono::milliseconds(500));
  });
  if (auto status = server->Start(); !status.ok()) {
    spdlog::error("{}", status.ToString());
    return 1;
  }
  absl::Status stopped = server->Run();
  if (!stopped.ok()) {
    spdlog::warn("shutdown: {}", stopped.ToString());
  }
  // Requests still waiting on Redis go on to Kafka, then the HTTP side is closed; events still
  // queued get their chance to be delivered (their
  // clients are gone, but crm-core will still see them once, by event id).
  redis_client.reset();
  if (auto status = (*producer)->Flush(settings.delivery_timeout); !status.ok()) {
    spdlog::warn("kafka flush: {}", status.ToString());
  }
  producer->reset();  // runs the last delivery callbacks while the server still exists
  server.reset();
  spdlog::info("stopped");
  return 0;
}
