// telephony-ingest: call events from a signed generic webhook, Twilio callbacks and an
// Asterisk AMI connection, published to Kafka as one event per call once its outcome is
// known; webhooks are answered 2xx only once Kafka acknowledged the event.

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "config/config.h"
#include "http/server.h"
#include "ingest/lifecycle.h"
#include "ingest/publish.h"
#include "ingest/readiness.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "redis/client.h"
#include "telephony-ingest/ami.h"
#include "telephony-ingest/redis_call_store.h"
#include "telephony-ingest/service.h"
#include "telephony-ingest/settings.h"

// As webform-ingest: keeps librdkafka's per-batch buffers in jemalloc's thread cache.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "tcache_max:131072";
}

int main(int argc, char** argv) {
  using namespace leadflow;
  config::Reader reader("telephony-ingest", "call events (webhook, Twilio, Asterisk AMI) to Kafka",
                        {"TELEPHONY_"});
  telephony::Settings settings = telephony::ReadSettings(reader);
  config::FinishOrExit(reader, argc, argv);
  log::Init("telephony-ingest", settings.log);
  if (settings.service.webhook_secret.empty() && settings.service.twilio_auth_token.empty() &&
      !settings.ami) {
    spdlog::warn(
        "no channel configured (TELEPHONY_WEBHOOK_SECRET, TELEPHONY_TWILIO_AUTH_TOKEN, "
        "TELEPHONY_AMI_HOST): nothing will be received");
  }

  std::atomic<ingest::Lifecycle*> lifecycle{nullptr};
  auto on_fatal = [&lifecycle](const absl::Status& status) {
    if (ingest::Lifecycle* running = lifecycle.load()) {
      running->Fatal(status);
    }
  };
  auto producer = kafka::Producer::Create(
      {.brokers = settings.kafka_brokers,
       .client_id = "telephony-ingest",
       .delivery_timeout = settings.delivery_timeout,
       .extra = {{"linger.ms", std::to_string(settings.kafka_linger.count())}},
       .on_fatal = on_fatal});
  if (!producer.ok()) {
    spdlog::error("{}", producer.status().ToString());
    return 1;
  }
  if (auto status = (*producer)->CheckConnected(std::chrono::seconds(10)); !status.ok()) {
    spdlog::error("kafka at {}: {}", settings.kafka_brokers, status.ToString());
    return 1;
  }

  metrics::Registry registry;
  registry.AddCallbackGauge("telephony_kafka_in_flight",
                            "Events waiting for Kafka's acknowledgement.",
                            [producer = producer->get()] { return producer->InFlight(); });
  ingest::KafkaPublisher publisher(producer->get(), kafka::kInboundTopic);
  std::unique_ptr<telephony::RedisCallStore> call_store;
  if (settings.redis) {
    {
      redis::Client probe(*settings.redis);
      if (auto ping = probe.Run({"PING"}); !ping.ok()) {
        spdlog::warn(
            "{}: until it is back, webhooks are answered 503 (the providers retry) and "
            "Asterisk reports are decided on their own",
            ping.status().ToString());
      }
    }
    // Room for every waiting request's steps (two each at most), the ticker's and the AMI
    // client's, and the confirmations of publications.
    call_store = std::make_unique<telephony::RedisCallStore>(
        *settings.redis, 2 * settings.service.max_store_waiting + 1024);
    settings.service.call_store = call_store.get();
    registry.AddCallbackGauge(
        "telephony_redis_pending",
        "Call store steps submitted to Redis and not answered yet (requests', the ticker's, "
        "publication confirmations).",
        [store = call_store.get()] { return static_cast<double>(store->pending()); });
    registry.AddCallbackGauge(
        "telephony_redis_unschedules_waiting",
        "Publications confirmed by Kafka whose calls wait to be taken off the due set in the "
        "next Redis round trip (one ZREM for all; bounded by the publications in flight).",
        [store = call_store.get()] { return static_cast<double>(store->unschedules_waiting()); });
  } else {
    spdlog::info("no TELEPHONY_REDIS_HOST: the state of calls is kept in this process only");
  }
  telephony::TelephonyService service(settings.service, &publisher, &registry);
  service.on_fatal = on_fatal;

  std::unique_ptr<telephony::AmiCallTracker> tracker;
  std::unique_ptr<telephony::AmiClient> ami;
  if (settings.ami) {
    tracker = std::make_unique<telephony::AmiCallTracker>(
        *settings.ami, &service.calls(),
        [&service](const telephony::FinishedCall& call) { service.PublishBackground(call); });
    tracker->on_decided_alone = [&service] { service.CountStoreFailureDecidedAlone(); };
    metrics::Counter* incomplete =
        &registry
             .AddCounter(
                 "telephony_ami_calls_incomplete_total",
                 "Asterisk calls that ended while the AMI connection was down, published "
                 "without their end (outcome from their earlier states, talk time unknown).")
             .WithLabels({});
    tracker->on_incomplete = [incomplete] { incomplete->Increment(); };
    tracker->on_ignored = [&service](const char* reason) { service.CountIgnored(reason); };
    tracker->on_dropped = [&service](const std::string& call_id,
                                     const std::map<std::string, std::string>& dropped) {
      service.CountDropped(call_id, dropped);
    };
    ami = std::make_unique<telephony::AmiClient>(*settings.ami, tracker.get(), &registry);
  }

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

  // Every second, publishes settled and quiet calls and re-publishes refused background
  // events; every TELEPHONY_PARK_POLL_MS, answers the parked requests whose call is settled.
  std::mutex tick_mutex;
  std::condition_variable tick_wake;
  bool ticking = true;
  std::thread ticker([&] {
    std::unique_lock lock(tick_mutex);
    auto next_tick = std::chrono::steady_clock::now();
    while (!tick_wake.wait_for(lock, settings.park_poll, [&] { return !ticking; })) {
      lock.unlock();
      if (std::chrono::steady_clock::now() >= next_tick) {
        next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        service.Tick();
      }
      service.PollParked();
      lock.lock();
    }
  });
  if (ami) {
    ami->Start();
  }

  ingest::Lifecycle running({.public_server = server.get(),
                             .ops_server = &ops,
                             .readiness = &readiness,
                             .producer = producer->get(),
                             .flush_timeout = settings.delivery_timeout,
                             .unready_delay = settings.shutdown_delay,
                             // What feeds the producer besides requests: the AMI connection
                             // and the ticker. Calls still open are lost with the process (AMI
                             // cannot replay them); the flush below covers what was published.
                             .before_flush =
                                 [&] {
                                   if (ami) {
                                     ami->Stop();
                                   }
                                   {
                                     std::lock_guard lock(tick_mutex);
                                     ticking = false;
                                   }
                                   tick_wake.notify_all();
                                   ticker.join();
                                 },
                             // Parked requests are answered (published or 503) while the
                             // server can still send; the drain then waits for Kafka's answers.
                             .before_drain = [&service] { service.StopParking(); }});
  lifecycle = &running;
  int exit_code = running.Run();
  lifecycle = nullptr;
  if (call_store) {
    // Every step still waiting on Redis is answered (its reply, or 503 when Redis is gone)
    // while the producer and the server its callbacks use are still there.
    call_store->Shutdown();
  }
  if (ticker.joinable()) {
    {
      std::lock_guard lock(tick_mutex);
      ticking = false;
    }
    tick_wake.notify_all();
    ticker.join();
  }
  producer->reset();
  server.reset();
  spdlog::info("stopped");
  return exit_code;
}
