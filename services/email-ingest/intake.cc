#include "email-ingest/intake.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace leadflow::email {

Intake::Intake(ingest::Publisher* publisher, metrics::Registry* registry, ParseLimits limits,
               MessageRules rules)
    : publisher_(publisher),
      limits_(limits),
      rules_(std::move(rules)),
      outcomes_(&registry->AddCounter(
          "email_messages_total",
          "Messages received, by channel and outcome (published, dropped, rejected, temporary).",
          {"channel", "outcome"})),
      dropped_(&registry->AddCounter("email_dropped_total",
                                     "Messages that are never a lead, by channel and reason.",
                                     {"channel", "reason"})),
      kafka_failures_(&registry->AddCounter(
          "email_kafka_failures_total",
          "Events Kafka did not acknowledge (the sender is told to retry), by error class.",
          {"class"})),
      relayed_(&registry->AddCounter(
          "email_relayed_total",
          "Messages naming another person in Reply-To, by why: relay_sender (the From is in "
          "EMAIL_RELAY_SENDERS: the Reply-To is the person) or noreply_from (a no-reply From "
          "not configured: the From stays the person; a candidate for that setting).",
          {"channel", "why"})),
      truncations_(&registry->AddCounter(
          "email_truncations_total",
          "Messages taken with something cut to the caps, by channel and reason: to_recipients, "
          "cc_recipients (addresses past the cap of a To or Cc: to/cc_addresses_omitted), "
          "header (a header field cut: truncated_headers).",
          {"channel", "reason"})) {}

void Intake::SubmitRaw(std::string_view raw, const Envelope& envelope, Done done) {
  Submit(ParseMessage(raw, limits_), envelope, raw.size(), std::move(done));
}

void Intake::SubmitParsed(const ParsedMessage& message, const Envelope& envelope, Done done) {
  size_t size = message.text.size();
  for (const Attachment& attachment : message.attachments) {
    size += static_cast<size_t>(std::max<int64_t>(attachment.size_bytes, 0));
  }
  Submit(message, envelope, size, std::move(done));
}

void Intake::Submit(const ParsedMessage& message, const Envelope& envelope, size_t size_bytes,
                    Done done) {
  // Counted whatever becomes of the message: a cut is the parser's doing, on every channel.
  if (message.to_addresses_omitted > 0) {
    truncations_->WithLabels({envelope.provider, "to_recipients"}).Increment();
  }
  if (message.cc_addresses_omitted > 0) {
    truncations_->WithLabels({envelope.provider, "cc_recipients"}).Increment();
  }
  if (!message.truncated_headers.empty()) {
    truncations_->WithLabels({envelope.provider, "header"}).Increment();
  }
  if (std::optional<DropReason> reason = NeverALead(message, envelope, rules_)) {
    std::string event_id = EmailEventId(message);
    dropped_->WithLabels({envelope.provider, DropReasonName(*reason)}).Increment();
    outcomes_->WithLabels({envelope.provider, "dropped"}).Increment();
    // Without content: who, what and why are enough to find it in the mailbox.
    spdlog::info("email: not a lead ({}), {} message {} to {}", DropReasonName(*reason),
                 envelope.provider, event_id, envelope.mailbox);
    done({.kind = IntakeResult::Kind::kDropped, .event_id = event_id, .drop_reason = *reason});
    return;
  }
  auto built = BuildEmailEvent(message, envelope, rules_);
  if (!built.ok()) {
    outcomes_->WithLabels({envelope.provider, "rejected"}).Increment();
    spdlog::info("email: {} message refused: {}", envelope.provider, built.status().ToString());
    done({.kind = IntakeResult::Kind::kRejected, .detail = "no usable sender address"});
    return;
  }
  std::string event_id = built->event.event_id();
  if (const std::string& relay = built->event.email().relay_address(); !relay.empty()) {
    relayed_->WithLabels({envelope.provider, "relay_sender"}).Increment();
    // Addresses only: what an operator needs to check the relay setting.
    spdlog::info("email: {} message {} from {} taken as written by its Reply-To (relay sender)",
                 envelope.provider, event_id, relay);
  } else if (const std::string& from = built->event.email().from_address();
             !message.reply_to_address.empty() && message.reply_to_address != from &&
             IsNoReplyAddress(from)) {
    relayed_->WithLabels({envelope.provider, "noreply_from"}).Increment();
    spdlog::info(
        "email: {} message {} from no-reply {} names someone else in Reply-To; the From "
        "stays the person (add it to EMAIL_RELAY_SENDERS if it relays web forms)",
        envelope.provider, event_id, from);
  }
  std::string value = built->event.SerializeAsString();
  std::string channel = envelope.provider;
  // What the accepted line says: no subject, text or sender, and the recipients only counted
  // (To and Cc, each list bounded by the parser), so the line stays one line.
  std::string accepted =
      fmt::format("mailbox={} bytes={} recipients={} attachments={} reply={}", envelope.mailbox,
                  size_bytes, message.to_addresses.size() + message.cc_addresses.size(),
                  message.attachments.size(), message.in_reply_to.empty() ? "no" : "yes");
  publisher_->Publish(
      built->key, value, built->headers,
      [this, event_id, channel, accepted = std::move(accepted),
       done = std::move(done)](const kafka::DeliveryResult& result) {
        if (result.status.ok()) {
          outcomes_->WithLabels({channel, "published"}).Increment();
          spdlog::info("email: accepted {} message {} {}", channel, event_id, accepted);
          done({.kind = IntakeResult::Kind::kPublished, .event_id = event_id});
          return;
        }
        outcomes_->WithLabels({channel, "temporary"}).Increment();
        kafka_failures_->WithLabels({std::string(kafka::ErrorClassName(result.error_class))})
            .Increment();
        spdlog::warn("email: event {} not acknowledged by Kafka ({}): {}", event_id,
                     kafka::ErrorClassName(result.error_class), result.status.ToString());
        if (result.error_class == kafka::ErrorClass::kFatal && on_fatal) {
          on_fatal(result.status);
        }
        done({.kind = IntakeResult::Kind::kTemporary,
              .event_id = event_id,
              .error_class = result.error_class});
      });
}

}  // namespace leadflow::email
