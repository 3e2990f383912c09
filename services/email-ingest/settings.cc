#include "email-ingest/settings.h"

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace leadflow::email {

Settings ReadSettings(config::Reader& reader) {
  Settings settings;
  // SMTP: what a mail server (Postfix `transport`, a relayhost) hands messages to.
  settings.smtp.address =
      reader.String("EMAIL_SMTP_ADDRESS", "127.0.0.1", "SMTP address to listen on");
  settings.smtp.port = static_cast<int>(
      reader.Int("EMAIL_SMTP_PORT", 2525, 0, 65535, "SMTP port (0 picks a free one)"));
  settings.smtp.hostname =
      reader.String("EMAIL_HOSTNAME", "localhost", "name in the SMTP greeting and EHLO answer");
  // Only these recipients are accepted (550 5.1.1 otherwise): never an open relay.
  std::string recipients =
      reader.String("EMAIL_RECIPIENTS", "",
                    "accepted recipients: addresses and domains, comma-separated (required)");
  settings.recipients = RecipientPolicy::Parse(recipients);
  if (settings.recipients.empty()) {
    reader.Fail("EMAIL_RECIPIENTS", "required: the addresses or domains mail is accepted for");
  }
  settings.smtp.limits.max_message_bytes = static_cast<size_t>(
      reader.Int("EMAIL_MAX_MESSAGE_BYTES", 25 * 1024 * 1024, 1024, 200 * 1024 * 1024,
                 "largest message accepted (SIZE; 552 5.3.4 beyond)"));
  settings.smtp.limits.max_recipients = static_cast<size_t>(reader.Int(
      "EMAIL_MAX_RECIPIENTS", 100, 1, 10000, "recipients per message at most (452 4.5.3 beyond)"));
  settings.smtp.limits.max_command_line = static_cast<size_t>(
      reader.Int("EMAIL_MAX_COMMAND_LINE_BYTES", 2048, 512, 65536, "longest SMTP command line"));
  settings.smtp.command_timeout = reader.Millis(
      "EMAIL_COMMAND_TIMEOUT_MS", std::chrono::milliseconds(300000), "time to send each command");
  settings.smtp.data_timeout = reader.Millis(
      "EMAIL_DATA_TIMEOUT_MS", std::chrono::milliseconds(180000), "longest silence inside DATA");
  settings.smtp.max_connections = static_cast<size_t>(reader.Int(
      "EMAIL_MAX_CONNECTIONS", 256, 1, 100000, "open SMTP/LMTP connections at most (421 beyond)"));
  settings.smtp.threads =
      static_cast<int>(reader.Int("EMAIL_SMTP_THREADS", 2, 1, 64, "SMTP event-loop threads"));
  settings.smtp.tls_certificate_file = reader.String(
      "EMAIL_TLS_CERT_FILE", "", "PEM certificate chain: STARTTLS is offered when set");
  settings.smtp.tls_key_file = reader.String("EMAIL_TLS_KEY_FILE", "", "PEM private key");
  if (settings.smtp.tls_certificate_file.empty() != settings.smtp.tls_key_file.empty()) {
    reader.Fail("EMAIL_TLS_KEY_FILE",
                "set both EMAIL_TLS_CERT_FILE and EMAIL_TLS_KEY_FILE, or neither");
  }

  // LMTP (RFC 2033): what Postfix's `lmtp:` transport or Dovecot's LDA speak; off by default.
  settings.lmtp_enabled = reader.Bool("EMAIL_LMTP_ENABLED", false, "serve LMTP too");
  settings.lmtp = settings.smtp;
  settings.lmtp.lmtp = true;
  settings.lmtp.address =
      reader.String("EMAIL_LMTP_ADDRESS", "127.0.0.1", "LMTP address to listen on");
  settings.lmtp.port = static_cast<int>(
      reader.Int("EMAIL_LMTP_PORT", 2424, 0, 65535, "LMTP port (0 picks a free one)"));

  // Mail from our own addresses is a copy of what we sent, not a lead.
  settings.rules.own_addresses = settings.recipients;
  std::string own =
      reader.String("EMAIL_OWN_ADDRESS_MAIL", "drop",
                    "mail whose From is one of EMAIL_RECIPIENTS: drop (own_address) or accept");
  if (own != "drop" && own != "accept") reader.Fail("EMAIL_OWN_ADDRESS_MAIL", "drop or accept");
  settings.rules.accept_own_address = own == "accept";
  std::string subjects = reader.String(
      "EMAIL_AUTOREPLY_SUBJECTS", "",
      "subject prefixes of automatic replies, '|'-separated (empty: the built-in list; '-': none)");
  if (subjects == "-") {
    settings.rules.autoreply_subjects.clear();
  } else if (!subjects.empty()) {
    settings.rules.autoreply_subjects.clear();
    for (absl::string_view prefix : absl::StrSplit(subjects, '|', absl::SkipWhitespace())) {
      settings.rules.autoreply_subjects.emplace_back(
          std::string(absl::StripAsciiWhitespace(prefix)));
    }
  }
  settings.rules.relay_senders = RecipientPolicy::Parse(reader.String(
      "EMAIL_RELAY_SENDERS", "",
      "addresses and domains that send on behalf of the person in Reply-To (form builders)"));

  settings.parse.max_text_bytes = static_cast<size_t>(reader.Int(
      "EMAIL_MAX_TEXT_BYTES", 64 * 1024, 1024, 1024 * 1024, "text kept per message, bytes"));

  // Webhooks from inbound-mail providers.
  settings.http.address = reader.String("EMAIL_HTTP_ADDRESS", "127.0.0.1", "webhook address");
  settings.http.port = static_cast<int>(
      reader.Int("EMAIL_HTTP_PORT", 8082, 0, 65535, "webhook HTTP port (0 picks a free one)"));
  settings.http.threads = 2;
  settings.http.max_connections = 1024;
  settings.http.max_in_flight = 256;
  settings.http.max_body_bytes =
      static_cast<size_t>(reader.Int("EMAIL_MAX_WEBHOOK_BYTES", 30 * 1024 * 1024, 65536,
                                     200 * 1024 * 1024, "largest webhook body (413 beyond)"));
  settings.http.handle_signals = true;
  settings.http.operations_routes = false;

  // Each provider's route is served only when its secret is set.
  settings.webhooks.mailgun_signing_key = reader.Secret(
      "EMAIL_MAILGUN_SIGNING_KEY", "Mailgun HTTP webhook signing key (empty: no Mailgun route)");
  settings.webhooks.mailgun_window =
      std::chrono::seconds(reader.Int("EMAIL_MAILGUN_WINDOW_SECONDS", 9 * 3600, 10, 48 * 3600,
                                      "how far a Mailgun timestamp may be from now (Mailgun "
                                      "retries for 8 h, possibly with the first signature)"));
  settings.webhooks.replay_capacity = static_cast<size_t>(
      reader.Int("EMAIL_MAILGUN_TOKEN_CAPACITY", 100000, 100, 10000000,
                 "Mailgun tokens remembered at most (each for twice the window)"));
  settings.webhooks.postmark_basic_auth = reader.Secret(
      "EMAIL_POSTMARK_BASIC_AUTH", "user:password in the Postmark inbound URL (empty: no route)");
  settings.webhooks.sendgrid_basic_auth =
      reader.Secret("EMAIL_SENDGRID_BASIC_AUTH",
                    "user:password in the SendGrid Inbound Parse URL (empty: no route)");
  for (const char* name : {"EMAIL_POSTMARK_BASIC_AUTH", "EMAIL_SENDGRID_BASIC_AUTH"}) {
    const std::string& value = std::string(name) == "EMAIL_POSTMARK_BASIC_AUTH"
                                   ? settings.webhooks.postmark_basic_auth
                                   : settings.webhooks.sendgrid_basic_auth;
    if (!value.empty() && value.find(':') == std::string::npos) reader.Fail(name, "user:password");
  }

  // IMAP polling of one mailbox (a hosted provider's inbox).
  settings.imap.url = reader.String("EMAIL_IMAP_URL", "",
                                    "imaps://host:993 or imap://host:143 to poll (empty: off)");
  settings.imap.user = reader.String("EMAIL_IMAP_USER", "", "IMAP user");
  settings.imap.password = reader.Secret("EMAIL_IMAP_PASSWORD", "IMAP password");
  settings.imap.folder = reader.String("EMAIL_IMAP_FOLDER", "INBOX", "IMAP folder to poll");
  settings.imap.address =
      reader.String("EMAIL_IMAP_ADDRESS", "", "the polled mailbox's address (routing in crm-core)");
  settings.imap.keyword =
      reader.String("EMAIL_IMAP_KEYWORD", "$LeadFlowImported", "keyword set on imported messages");
  settings.imap.interval = reader.Millis("EMAIL_IMAP_INTERVAL_MS", std::chrono::milliseconds(30000),
                                         "time between two polling rounds");
  settings.imap.since_days = static_cast<int>(
      reader.Int("EMAIL_IMAP_SINCE_DAYS", 30, 0, 36500,
                 "only messages received in the last N days are imported (0: all)"));
  settings.imap.max_per_poll = static_cast<size_t>(
      reader.Int("EMAIL_IMAP_MAX_PER_POLL", 100, 1, 10000, "messages imported per round at most"));
  if (!settings.imap.url.empty()) {
    if (settings.imap.url.rfind("imap://", 0) != 0 && settings.imap.url.rfind("imaps://", 0) != 0) {
      reader.Fail("EMAIL_IMAP_URL", "imap:// or imaps://");
    }
    if (settings.imap.user.empty()) reader.Fail("EMAIL_IMAP_USER", "required with EMAIL_IMAP_URL");
    if (settings.imap.keyword.empty() ||
        settings.imap.keyword.find_first_of(" ()\\\r\n\"") != std::string::npos) {
      reader.Fail("EMAIL_IMAP_KEYWORD", "one IMAP atom");
    }
  }

  settings.ops.address =
      reader.String("EMAIL_OPS_ADDRESS", "127.0.0.1", "operations address to listen on");
  settings.ops.port = static_cast<int>(
      reader.Int("EMAIL_OPS_PORT", 9082, 0, 65535, "operations port: /healthz, /readyz, /metrics"));
  settings.ops.threads = 1;
  settings.ops.max_connections = 64;
  settings.ops.idle_timeout = std::chrono::milliseconds(10000);

  settings.kafka_brokers =
      reader.String("EMAIL_KAFKA_BROKERS", "", "Kafka bootstrap servers (required)");
  if (settings.kafka_brokers.empty()) reader.Fail("EMAIL_KAFKA_BROKERS", "required");
  // A message waits at most this for Kafka's acknowledgement before it is answered 451.
  settings.delivery_timeout =
      reader.Millis("EMAIL_DELIVERY_TIMEOUT_MS", std::chrono::milliseconds(5000),
                    "time Kafka has to acknowledge an event before the answer is 451/503");
  if (settings.delivery_timeout < std::chrono::milliseconds(100)) {
    reader.Fail("EMAIL_DELIVERY_TIMEOUT_MS", "at least 100 ms");
  }
  settings.http.handler_timeout = settings.delivery_timeout + std::chrono::seconds(5);
  // Every SMTP answer waits for the acknowledgement, and a sending server sends its next message
  // on that connection only after it: the time a message lingers for a batch is paid by every
  // message (docs/performance.md, case d).
  settings.kafka_linger = reader.Millis("EMAIL_KAFKA_LINGER_MS", std::chrono::milliseconds(1),
                                        "time a message waits to share a Kafka batch");
  if (settings.kafka_linger > std::chrono::milliseconds(1000)) {
    reader.Fail("EMAIL_KAFKA_LINGER_MS", "at most 1000");
  }
  settings.smtp_shutdown_grace =
      reader.Millis("EMAIL_SHUTDOWN_GRACE_MS", std::chrono::milliseconds(10000),
                    "on SIGTERM, time given to messages in flight");
  settings.http.shutdown_grace = settings.smtp_shutdown_grace;
  settings.lmtp.limits = settings.smtp.limits;
  settings.imap.max_message_bytes = settings.smtp.limits.max_message_bytes;

  settings.log = log::ReadOptions(reader);
  return settings;
}

}  // namespace leadflow::email
