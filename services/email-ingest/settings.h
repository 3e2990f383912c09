#pragma once

#include <chrono>
#include <string>

#include "config/config.h"
#include "email-ingest/imap.h"
#include "email-ingest/message.h"
#include "email-ingest/mime.h"
#include "email-ingest/smtp_server.h"
#include "email-ingest/smtp_session.h"
#include "email-ingest/webhooks.h"
#include "http/server.h"
#include "log/log.h"

namespace leadflow::email {

/// Everything email-ingest reads from its environment (see docs/email-ingest.md).
struct Settings {
  SmtpServerOptions smtp;
  bool lmtp_enabled = false;
  SmtpServerOptions lmtp;
  RecipientPolicy recipients;
  ParseLimits parse;
  /// Own addresses, auto-reply subjects, relay senders (the filters and the event's person).
  MessageRules rules;
  WebhookOptions webhooks;
  /// The polled mailbox; url empty: no polling.
  ImapOptions imap;
  /// Webhooks (Mailgun, Postmark, SendGrid).
  http::ServerOptions http;
  /// /healthz, /readyz, /metrics.
  http::ServerOptions ops;
  std::string kafka_brokers;
  std::chrono::milliseconds delivery_timeout{5000};
  /// librdkafka's linger.ms: how long a message waits for others to share its batch.
  std::chrono::milliseconds kafka_linger{1};
  /// On SIGTERM, how long an SMTP transaction in progress may take to be answered.
  std::chrono::milliseconds smtp_shutdown_grace{10000};
  log::Options log;
};

/// Reads and validates the settings; problems are collected in `reader`.
Settings ReadSettings(config::Reader& reader);

}  // namespace leadflow::email
