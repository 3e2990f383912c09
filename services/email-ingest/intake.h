#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "email-ingest/message.h"
#include "email-ingest/mime.h"
#include "ingest/publish.h"
#include "kafka/errors.h"
#include "metrics/metrics.h"

namespace leadflow::email {

/// What became of a message handed to the intake.
struct IntakeResult {
  enum class Kind {
    kPublished,  // Kafka acknowledged the event
    kDropped,    // never a lead (auto-reply, bounce, list…): nothing published, on purpose
    kRejected,   // unusable (no valid sender address): nothing published, retrying won't help
    kTemporary,  // Kafka did not take the event: the sender must retry
  };
  Kind kind = Kind::kTemporary;
  std::string event_id;                                      // when one was built
  DropReason drop_reason = DropReason::kNoSender;            // kDropped
  kafka::ErrorClass error_class = kafka::ErrorClass::kNone;  // kTemporary
  std::string detail;  // kRejected: why, safe to show the sender
};

/// The one path every channel (SMTP, LMTP, IMAP, webhooks) takes: parse, never-a-lead filters,
/// build the event, publish, and report once Kafka answered. Counts each outcome by channel and
/// logs each message once, without its content: dropped (reason), refused, not acknowledged
/// (warning), or accepted (info: channel, event id, mailbox, size, recipient count).
class Intake {
 public:
  using Done = std::function<void(const IntakeResult&)>;
  Intake(ingest::Publisher* publisher, metrics::Registry* registry, ParseLimits limits = {},
         MessageRules rules = {});

  /// A whole RFC 5322 message. `done` runs once, maybe on a Kafka thread, maybe before return.
  void SubmitRaw(std::string_view raw, const Envelope& envelope, Done done);
  /// A message a provider already took apart (Postmark JSON, SendGrid parsed fields).
  void SubmitParsed(const ParsedMessage& message, const Envelope& envelope, Done done);

  /// Runs when a delivery reports a fatal producer error (set by main).
  std::function<void(const absl::Status&)> on_fatal;

  const ParseLimits& limits() const { return limits_; }

 private:
  // `size_bytes`: the message's size as received (the raw message; a provider's parsed fields:
  // its text and attachments), for the log line of an accepted message.
  void Submit(const ParsedMessage& message, const Envelope& envelope, size_t size_bytes, Done done);

  ingest::Publisher* publisher_;
  const ParseLimits limits_;
  const MessageRules rules_;
  metrics::Family<metrics::Counter>* outcomes_;
  metrics::Family<metrics::Counter>* dropped_;
  metrics::Family<metrics::Counter>* kafka_failures_;
  metrics::Family<metrics::Counter>* relayed_;
  metrics::Family<metrics::Counter>* truncations_;
};

}  // namespace leadflow::email
