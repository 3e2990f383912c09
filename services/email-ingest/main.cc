// email-ingest: mail received over SMTP/LMTP (and, with the webhooks, from inbound-mail
// providers) published to Kafka; a message is answered 250 only once Kafka acknowledged it.

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>

#include "config/config.h"
#include "email-ingest/imap.h"
#include "email-ingest/intake.h"
#include "email-ingest/settings.h"
#include "email-ingest/smtp_server.h"
#include "email-ingest/webhooks.h"
#include "http/server.h"
#include "ingest/lifecycle.h"
#include "ingest/publish.h"
#include "ingest/readiness.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"

namespace {

using namespace leadflow;

/// The SMTP/LMTP delivery: the intake's outcome as the reply the sending server acts on.
email::SmtpServer::Deliver SmtpDelivery(email::Intake* intake, const char* channel) {
  return [intake, channel](email::ReceivedMessage message,
                           std::function<void(email::DeliveryOutcome, std::string)> done) {
    email::Envelope envelope{.provider = channel,
                             .mail_from = message.mail_from,
                             .mailbox = message.recipients.empty() ? "" : message.recipients[0],
                             .client_ip = message.client_ip,
                             .received = std::chrono::system_clock::now()};
    intake->SubmitRaw(message.raw, envelope, [done](const email::IntakeResult& result) {
      switch (result.kind) {
        case email::IntakeResult::Kind::kPublished:
        case email::IntakeResult::Kind::kDropped:  // taken on purpose: the sender must not retry
          done(email::DeliveryOutcome::kAccepted, "");
          return;
        case email::IntakeResult::Kind::kRejected:
          done(email::DeliveryOutcome::kRejected, result.detail);
          return;
        case email::IntakeResult::Kind::kTemporary:
          done(email::DeliveryOutcome::kTemporary, "");
          return;
      }
    });
  };
}

}  // namespace

int main(int argc, char** argv) {
  config::Reader reader("email-ingest", "mail over SMTP/LMTP and provider webhooks to Kafka",
                        {"EMAIL_"});
  email::Settings settings = email::ReadSettings(reader);
  config::FinishOrExit(reader, argc, argv);
  log::Init("email-ingest", settings.log);

  std::atomic<ingest::Lifecycle*> lifecycle{nullptr};
  auto on_fatal = [&lifecycle](const absl::Status& status) {
    if (ingest::Lifecycle* running = lifecycle.load()) running->Fatal(status);
  };
  auto producer = kafka::Producer::Create(
      {.brokers = settings.kafka_brokers,
       .client_id = "email-ingest",
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
  registry.AddCallbackGauge("email_kafka_in_flight", "Events waiting for Kafka's acknowledgement.",
                            [producer = producer->get()] { return producer->InFlight(); });
  ingest::KafkaPublisher publisher(producer->get(), kafka::kInboundTopic);
  email::Intake intake(&publisher, &registry, settings.parse, settings.rules);
  intake.on_fatal = on_fatal;

  email::SmtpServer smtp(settings.smtp, settings.recipients, SmtpDelivery(&intake, "smtp"),
                         &registry);
  std::unique_ptr<email::SmtpServer> lmtp;
  if (settings.lmtp_enabled) {
    lmtp = std::make_unique<email::SmtpServer>(settings.lmtp, settings.recipients,
                                               SmtpDelivery(&intake, "lmtp"), &registry);
  }

  ingest::Readiness readiness(
      [producer = producer->get()]() -> absl::Status {
        if (absl::Status fatal = producer->FatalError(); !fatal.ok()) return fatal;
        return producer->CheckConnected(std::chrono::milliseconds(1000));
      },
      std::chrono::milliseconds(2000));

  auto server = std::make_unique<http::Server>(settings.http, &registry);
  email::Webhooks webhooks(settings.webhooks, &intake, &registry);
  webhooks.Register(server.get());
  http::Server ops(settings.ops, &registry);
  ops.SetReadinessCheck([&readiness] { return readiness.Current(); });

  if (absl::Status status = smtp.Start(); !status.ok()) {
    spdlog::error("smtp: {}", status.ToString());
    return 1;
  }
  if (lmtp) {
    if (absl::Status status = lmtp->Start(); !status.ok()) {
      spdlog::error("lmtp: {}", status.ToString());
      return 1;
    }
  }

  std::unique_ptr<email::ImapClient> imap_client;
  std::unique_ptr<email::ImapPoller> imap;
  if (!settings.imap.url.empty()) {
    imap_client = std::make_unique<email::ImapClient>(settings.imap);
    imap =
        std::make_unique<email::ImapPoller>(settings.imap, imap_client.get(), &intake, &registry);
    imap->Start();
  }

  ingest::Lifecycle running({.public_server = server.get(),
                             .ops_server = &ops,
                             .readiness = &readiness,
                             .producer = producer->get(),
                             .flush_timeout = settings.delivery_timeout,
                             // SMTP and LMTP stop after the webhooks: idle sessions are told
                             // 421, a message in flight is answered (its delivery is bounded by
                             // Kafka's timeout) before the flush below.
                             .before_flush = [&] {
                               smtp.Stop(settings.smtp_shutdown_grace);
                               if (lmtp) lmtp->Stop(settings.smtp_shutdown_grace);
                             }});
  lifecycle = &running;
  int exit_code = running.Run();
  lifecycle = nullptr;
  if (imap) imap->Stop();
  smtp.Stop(std::chrono::milliseconds(0));
  if (lmtp) lmtp->Stop(std::chrono::milliseconds(0));
  producer->reset();
  server.reset();
  spdlog::info("stopped");
  return exit_code;
}
