// webform-ingest: receives web form submissions over HTTP and publishes them to Kafka,
// answering 202 only once Kafka acknowledged the event.

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "config/config.h"
#include "http/server.h"
#include "ingest/lifecycle.h"
#include "ingest/publish.h"
#include "ingest/readiness.h"
#include "ingest/store.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "redis/client.h"
#include "redis/pipelined_client.h"
#include "webform-ingest/service.h"
#include "webform-ingest/settings.h"

// jemalloc's options, read when it starts (MALLOC_CONF adds to them). librdkafka's LZ4 frame
// set-up callocs ~68 KiB per batch; above jemalloc's default thread-cache limit (32 KiB) every such
// calloc was zeroed by madvise(MADV_DONTNEED), whose TLB shoot-downs took ~5 % of the CPU under
// load (perf, docs/performance.md). With blocks up to 128 KiB in the thread cache the block is
// reused and zeroed with memset.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "tcache_max:131072";
}

int main(int argc, char** argv) {
  using namespace leadflow;
  config::Reader reader("webform-ingest", "web form submissions to Kafka", {"WEBFORM_"});
  webform::Settings settings = webform::ReadSettings(reader);
  config::FinishOrExit(reader, argc, argv);
  log::Init("webform-ingest", settings.log);

  // Set once the lifecycle exists; a fatal error before that simply ends start-up.
  std::atomic<ingest::Lifecycle*> lifecycle{nullptr};
  auto on_fatal = [&lifecycle](const absl::Status& status) {
    if (ingest::Lifecycle* running = lifecycle.load()) {
      running->Fatal(status);
    }
  };
  auto producer = kafka::Producer::Create({.brokers = settings.kafka_brokers,
                                           .client_id = "webform-ingest",
                                           .delivery_timeout = settings.delivery_timeout,
                                           .on_fatal = on_fatal});
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
  // All requests' Redis commands share round trips; no HTTP thread waits on Redis. Declared
  // before the registry and the servers, so it is destroyed after them: the
  // webform_redis_pending gauge reads it until the operations server is gone.
  redis::PipelinedClient redis_client(settings.redis, settings.http.threads,
                                      settings.redis_max_pending);

  metrics::Registry registry;
  registry.AddCallbackGauge("webform_kafka_in_flight",
                            "Events waiting for Kafka's acknowledgement.",
                            [producer = producer->get()] { return producer->InFlight(); });
  registry.AddCallbackGauge(
      "webform_redis_pending",
      "Redis commands not answered yet (bounded by WEBFORM_REDIS_MAX_PENDING).",
      [&redis_client] { return static_cast<double>(redis_client.pending()); });
  ingest::KafkaPublisher publisher(producer->get(), kafka::kInboundTopic);
  ingest::RedisStore store(&redis_client);
  webform::WebformService service(settings.service, &publisher, &store, &registry);
  service.on_fatal = on_fatal;

  // Readiness runs on its own thread: /readyz never waits on Kafka on an HTTP thread.
  ingest::Readiness readiness(
      [producer = producer->get()]() -> absl::Status {
        if (absl::Status fatal = producer->FatalError(); !fatal.ok()) {
          return fatal;
        }
        return producer->CheckConnected(std::chrono::milliseconds(1000));
      },
      std::chrono::milliseconds(2000));

  auto server = std::make_unique<http::Server>(settings.http, &registry);
  service.Register(server.get());
  http::Server ops(settings.ops, &registry);
  ops.SetReadinessCheck([&readiness] { return readiness.Current(); });

  ingest::Lifecycle running({.public_server = server.get(),
                             .ops_server = &ops,
                             .readiness = &readiness,
                             .producer = producer->get(),
                             .flush_timeout = settings.delivery_timeout,
                             .unready_delay = settings.shutdown_delay,
                             // Stops the Redis client (not destroyed: the gauge above reads
                             // it while the flush runs and the operations port is up). Commands
                             // already queued still run; any further Redis step of a request is
                             // refused, so such a request is answered 503 overloaded — a request
                             // whose last Redis step already ran may still publish, and the
                             // flush below covers it.
                             .before_flush = [&redis_client] { redis_client.Shutdown(); }});
  lifecycle = &running;
  int exit_code = running.Run();
  lifecycle = nullptr;
  producer->reset();  // runs the last delivery callbacks while the server still exists
  server.reset();
  spdlog::info("stopped");
  return exit_code;
}
