#include "crm-core/settings.h"

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "crm-core/domain/email/thread.h"
#include "identity/identity.h"

namespace leadflow::crm {

bool IsLoopbackAddress(const std::string& address) {
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return true;
  }
  // host:port, [v6]:port; the host is what the port is bound to.
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

Settings ReadSettings(config::Reader& reader, const std::string& command) {
  Settings settings;
  settings.log = log::ReadOptions(reader);
  // Where the CRM data lives (libpq URL). The local stack's PostgreSQL listens on 55432.
  settings.database_url = reader.String(
      "CRM_DATABASE_URL", "postgresql://leadflow@127.0.0.1:55432/leadflow", "PostgreSQL URL");
  // Roles of this process: the API, the inbound consumer, or both (local default).
  std::string roles =
      reader.String("CRM_ROLES", "api,consumer", "comma-separated roles to run: api, consumer");
  settings.run_api = false;
  settings.run_consumer = false;
  for (absl::string_view role : absl::StrSplit(roles, ',', absl::SkipWhitespace())) {
    if (role == "api") {
      settings.run_api = true;
    } else if (role == "consumer") {
      settings.run_consumer = true;
    } else {
      reader.Fail("CRM_ROLES", "unknown role '" + std::string(role) + "'");
    }
  }
  settings.database_pool_size = static_cast<int>(
      reader.Int("CRM_DATABASE_POOL_SIZE", 8, 1, 256, "API connections to PostgreSQL"));
  // API calls waiting for a worker (one worker per pooled connection); past it, UNAVAILABLE.
  settings.api_queue_max = static_cast<size_t>(reader.Int(
      "CRM_API_QUEUE_MAX", 256, 1, 100000, "API calls queued at most; more are refused"));
  // gRPC API listening address.
  settings.grpc_address =
      reader.String("CRM_GRPC_ADDRESS", "127.0.0.1:50051", "gRPC listen address host:port");
  // TLS keeps bearer API keys off the network in clear. The files are read at start
  // (a Kubernetes Secret mounted as files); rotating them means a rolling restart.
  settings.tls_cert_file =
      reader.String("CRM_TLS_CERT_FILE", "", "gRPC TLS certificate chain (PEM); empty: plaintext");
  settings.tls_key_file =
      reader.String("CRM_TLS_KEY_FILE", "", "gRPC TLS private key (PEM), with CRM_TLS_CERT_FILE");
  settings.tls_client_ca_file = reader.String(
      "CRM_TLS_CLIENT_CA_FILE", "", "CA (PEM) that signs client certificates; set: mutual TLS");
  if (settings.tls_cert_file.empty() != settings.tls_key_file.empty()) {
    reader.Fail(settings.tls_cert_file.empty() ? "CRM_TLS_CERT_FILE" : "CRM_TLS_KEY_FILE",
                "CRM_TLS_CERT_FILE and CRM_TLS_KEY_FILE go together");
  }
  if (!settings.tls_client_ca_file.empty() && settings.tls_cert_file.empty()) {
    reader.Fail("CRM_TLS_CLIENT_CA_FILE", "needs CRM_TLS_CERT_FILE and CRM_TLS_KEY_FILE");
  }
  // Plaintext beyond loopback must be asked for by name: a forgotten certificate would otherwise
  // send every bearer API key across the network in clear.
  settings.grpc_plaintext =
      reader.Bool("CRM_GRPC_PLAINTEXT", false,
                  "allow gRPC without TLS on a non-loopback CRM_GRPC_ADDRESS (trial setups only)");
  if (settings.grpc_plaintext && !settings.tls_cert_file.empty()) {
    reader.Fail("CRM_GRPC_PLAINTEXT", "contradicts CRM_TLS_CERT_FILE: choose TLS or plaintext");
  }
  // Operations port: /healthz, /readyz, /metrics.
  settings.http_address = reader.String("CRM_HTTP_ADDRESS", "127.0.0.1", "operations HTTP address");
  settings.http_port =
      static_cast<int>(reader.Int("CRM_HTTP_PORT", 9091, 0, 65535, "operations HTTP port"));
  std::string keys =
      reader.Secret("CRM_API_KEYS", "API keys with roles: key:admin,key:integration,key:read-only");
  // List methods sign their page tokens with it (api/common/paging.h). Unset: the key migration
  // 0023 generated in the database, shared by every replica and stable across restarts. Set it
  // (a Kubernetes Secret) to keep the key out of the database; changing it invalidates the tokens
  // given out, whose clients start again from the first page.
  settings.page_token_key = reader.Secret(
      "CRM_PAGE_TOKEN_KEY", "key of page token signatures, 32 to 256 bytes; unset: the database's");
  if (!settings.page_token_key.empty() &&
      (settings.page_token_key.size() < 32 || settings.page_token_key.size() > 256)) {
    reader.Fail("CRM_PAGE_TOKEN_KEY", "must be 32 to 256 bytes long");
  }
  settings.kafka_brokers =
      reader.String("CRM_KAFKA_BROKERS", "", "Kafka bootstrap servers host:port[,host:port]");
  settings.group_id =
      reader.String("CRM_KAFKA_GROUP_ID", "leadflow-crm-core", "consumer group of the consumers");
  settings.batch_max_events = static_cast<size_t>(
      reader.Int("CRM_BATCH_MAX_EVENTS", 1000, 1, 5000, "events in one transaction at most"));
  settings.batch_max_wait = reader.Millis("CRM_BATCH_MAX_WAIT_MS", std::chrono::milliseconds(50),
                                          "how long a batch waits to fill up");
  // Bound of the identity-lock closure: advisory locks one batch transaction may take. Keep it
  // under PostgreSQL's lock table (max_locks_per_transaction × max_connections, shared).
  settings.batch_max_identity_locks = static_cast<size_t>(
      reader.Int("CRM_BATCH_MAX_IDENTITY_LOCKS", 8192, 16, 1000000,
                 "advisory locks one batch may take; a batch needing more is split"));
  // A batch failing deterministically (not data, not an outage) is tried this often, then split
  // until the event that fails alone is dead-lettered.
  settings.batch_attempts_before_split = static_cast<int>(
      reader.Int("CRM_BATCH_ATTEMPTS_BEFORE_SPLIT", 3, 1, 100,
                 "attempts of a deterministically failing batch before it is split"));
  // The classic → simple switch job: leads converted per transaction, and how often an idle
  // consumer looks for a job.
  settings.mode_switch_batch = reader.Int("CRM_MODE_SWITCH_BATCH", 200, 1, 10000,
                                          "open leads the mode switch converts per transaction");
  settings.mode_switch_poll =
      reader.Millis("CRM_MODE_SWITCH_POLL_MS", std::chrono::milliseconds(1000),
                    "how often the consumer looks for a mode switch job");
  // Unidentified calls (withheld numbers) are kept this long, then deleted by the consumer in
  // statements of at most CRM_UNIDENTIFIED_CALLS_PRUNE_BATCH rows, every
  // CRM_UNIDENTIFIED_CALLS_PRUNE_INTERVAL_MS: the table stays bounded however many come in.
  settings.unidentified_calls_retention_days =
      static_cast<int>(reader.Int("CRM_UNIDENTIFIED_CALLS_RETENTION_DAYS", 90, 1, 3650,
                                  "days an unidentified call is kept before it is deleted"));
  settings.unidentified_calls_prune_batch = static_cast<int>(
      reader.Int("CRM_UNIDENTIFIED_CALLS_PRUNE_BATCH", 1000, 1, 100000,
                 "unidentified calls deleted per statement (one short transaction each)"));
  settings.unidentified_calls_prune_interval =
      reader.Millis("CRM_UNIDENTIFIED_CALLS_PRUNE_INTERVAL_MS", std::chrono::milliseconds(60000),
                    "how often the consumer deletes unidentified calls past their retention");
  // API: PostgreSQL statement_timeout of the API's connections (a gRPC deadline shortens it).
  settings.database_statement_timeout =
      reader.Millis("CRM_DATABASE_STATEMENT_TIMEOUT_MS", std::chrono::milliseconds(5000),
                    "statement_timeout of API queries");
  // API: how long a call waits for a free pooled connection before UNAVAILABLE.
  settings.database_acquire_timeout =
      reader.Millis("CRM_DATABASE_ACQUIRE_TIMEOUT_MS", std::chrono::milliseconds(2000),
                    "wait for a free API database connection at most this long");
  // migrate: how long a migration waits for a table lock before it lets the table's readers and
  // writers go and tries again, and how often (docs/operations.md, "Migrations").
  settings.migration.lock_timeout =
      reader.Millis("CRM_MIGRATION_LOCK_TIMEOUT_MS", settings.migration.lock_timeout,
                    "migrate: lock_timeout of each migration statement");
  if (settings.migration.lock_timeout <= std::chrono::milliseconds(0) ||
      settings.migration.lock_timeout > std::chrono::minutes(10)) {
    reader.Fail("CRM_MIGRATION_LOCK_TIMEOUT_MS", "must be between 1 and 600000");
  }
  settings.migration.lock_attempts = static_cast<int>(
      reader.Int("CRM_MIGRATION_LOCK_ATTEMPTS", settings.migration.lock_attempts, 1, 1000,
                 "migrate: attempts of a migration stopped by lock_timeout before failing"));
  settings.migration.retry_backoff =
      reader.Millis("CRM_MIGRATION_RETRY_BACKOFF_MS", settings.migration.retry_backoff,
                    "migrate: wait before the first retry, doubled up to 30 s");
  if (settings.migration.retry_backoff < std::chrono::milliseconds(0) ||
      settings.migration.retry_backoff > std::chrono::minutes(1)) {
    reader.Fail("CRM_MIGRATION_RETRY_BACKOFF_MS", "must be between 0 and 60000");
  }
  settings.migration.migrate_lock_wait =
      reader.Millis("CRM_MIGRATION_WAIT_MS", settings.migration.migrate_lock_wait,
                    "migrate: wait at most this long for another migrate to finish");
  if (settings.migration.migrate_lock_wait <= std::chrono::milliseconds(0)) {
    reader.Fail("CRM_MIGRATION_WAIT_MS", "must be positive");
  }
  // Identities a lead can gain from inbound traffic; past it events join the lead without
  // adding identities (crm_inbound_identities_capped_total counts them).
  settings.rules.max_inbound_identities = static_cast<size_t>(
      reader.Int("CRM_LEAD_MAX_INBOUND_IDENTITIES", 20, 1, 1000,
                 "identities one lead can gain from inbound events, and the most a "
                 "merged record may hold"));
  settings.redis_host = reader.String("CRM_REDIS_HOST", "127.0.0.1", "Redis host (fast paths)");
  settings.redis_port = static_cast<int>(
      reader.Int("CRM_REDIS_PORT", 56379, 0, 65535, "Redis port; 0 runs without Redis"));
  settings.redis_prefix =
      reader.String("CRM_REDIS_PREFIX", "leadflow:", "prefix of crm-core's Redis keys");
  settings.rules.title_template =
      reader.String("CRM_LEAD_TITLE_TEMPLATE", settings.rules.title_template,
                    "lead title template: {city} {name} {company} {need} {form}");
  settings.rules.task_deadline = std::chrono::minutes(reader.Int(
      "CRM_TASK_DEADLINE_MINUTES", 60, 1, 60 * 24 * 30, "deadline of 'process the request' tasks"));
  // Email: our addresses whose mail's Reply-To may find the sender's record (a form relay's
  // mailbox); anyone can write any Reply-To, so by default it is never used for matching.
  const std::string trusted = reader.String(
      "CRM_EMAIL_REPLY_TO_TRUSTED_MAILBOXES", "",
      "comma-separated addresses of ours whose mail's Reply-To is matched (default: none)");
  for (absl::string_view address : absl::StrSplit(trusted, ',', absl::SkipWhitespace())) {
    std::string normalized =
        domain::NormalizeRouteAddress(std::string_view(address.data(), address.size()));
    if (normalized.empty()) {
      reader.Fail("CRM_EMAIL_REPLY_TO_TRUSTED_MAILBOXES",
                  "'" + std::string(address) + "' is not an email address");
      continue;
    }
    settings.rules.reply_to_trusted_mailboxes.insert(normalized);
  }
  // Email: the domains where a shared domain says nothing of whose colleague a sender is (public
  // mail providers), and ours; a reply from any other domain of its thread's senders joins it.
  const std::string public_domains = reader.String(
      "CRM_EMAIL_PUBLIC_DOMAINS", absl::StrJoin(settings.rules.public_mail_domains, ","),
      "comma-separated public mail domains (\"name.*\": any suffix) whose senders never join a "
      "thread by their domain alone");
  settings.rules.public_mail_domains.clear();
  for (absl::string_view pattern : absl::StrSplit(public_domains, ',', absl::SkipWhitespace())) {
    std::string normalized =
        domain::NormalizeMailDomainPattern(std::string_view(pattern.data(), pattern.size()));
    if (normalized.empty()) {
      reader.Fail("CRM_EMAIL_PUBLIC_DOMAINS", "'" + std::string(pattern) + "' is not a domain");
      continue;
    }
    settings.rules.public_mail_domains.push_back(normalized);
  }
  const std::string own_domains = reader.String(
      "CRM_EMAIL_OWN_DOMAINS", "",
      "comma-separated domains of ours (staff, recipients) whose senders never join a thread by "
      "their domain alone");
  for (absl::string_view name : absl::StrSplit(own_domains, ',', absl::SkipWhitespace())) {
    std::string normalized =
        domain::NormalizeMailDomainPattern(std::string_view(name.data(), name.size()));
    if (normalized.empty() || normalized.back() == '*') {
      reader.Fail("CRM_EMAIL_OWN_DOMAINS", "'" + std::string(name) + "' is not a domain");
      continue;
    }
    settings.rules.own_mail_domains.insert(normalized);
  }
  // Email: messages kept with their content per thread and per record; past either, a message
  // has its effect but only its headers are kept (crm_email_contents_omitted_total).
  settings.rules.max_messages_per_thread =
      static_cast<size_t>(reader.Int("CRM_EMAIL_MAX_MESSAGES_PER_THREAD", 500, 1, 1000000,
                                     "email messages kept with their text per thread"));
  settings.rules.max_messages_per_record = static_cast<size_t>(
      reader.Int("CRM_EMAIL_MAX_MESSAGES_PER_RECORD", 5000, 1, 10000000,
                 "email messages kept with their text per lead, contact, company or deal"));

  settings.default_region =
      reader.String("CRM_DEFAULT_REGION", settings.default_region,
                    "region of phone numbers written without a country code (ISO 3166, e.g. FR)");
  if (absl::Status region = identity::ValidateRegion(settings.default_region); !region.ok()) {
    reader.Fail("CRM_DEFAULT_REGION", std::string(region.message()));
  }

  if (command == "serve") {
    if (settings.run_api) {
      auto parsed = ParseApiKeys(keys);
      if (!parsed.ok()) {
        reader.Fail("CRM_API_KEYS", std::string(parsed.status().message()));
      } else {
        settings.api_keys = *parsed;
      }
    }
    if (settings.run_consumer && settings.kafka_brokers.empty()) {
      reader.Fail("CRM_KAFKA_BROKERS", "required by the consumer role");
    }
    if (settings.run_api && settings.tls_cert_file.empty() && !settings.grpc_plaintext &&
        !IsLoopbackAddress(settings.grpc_address)) {
      reader.Fail("CRM_GRPC_ADDRESS",
                  "'" + settings.grpc_address +
                      "' is reachable from the network: set CRM_TLS_CERT_FILE and "
                      "CRM_TLS_KEY_FILE, or CRM_GRPC_PLAINTEXT=true to accept plaintext");
    }
    if (!settings.run_api && !settings.run_consumer) {
      reader.Fail("CRM_ROLES", "no role to run");
    }
  }
  return settings;
}

}  // namespace leadflow::crm
