#include "telephony-ingest/settings.h"

#include <algorithm>

#include "absl/time/time.h"
#include "identity/identity.h"
#include "telephony-ingest/twilio.h"

namespace leadflow::telephony {

Settings ReadSettings(config::Reader& reader) {
  Settings settings;
  settings.http.address =
      reader.String("TELEPHONY_HTTP_ADDRESS", "127.0.0.1", "address to listen on");
  settings.http.port = static_cast<int>(
      reader.Int("TELEPHONY_HTTP_PORT", 8083, 0, 65535, "HTTP port (0 picks a free one)"));
  settings.http.threads =
      static_cast<int>(reader.Int("TELEPHONY_HTTP_THREADS", 2, 1, 64, "HTTP event-loop threads"));
  settings.http.max_connections = static_cast<size_t>(
      reader.Int("TELEPHONY_MAX_CONNECTIONS", 4096, 1, 1000000, "open client connections at most"));
  // Providers post from a few addresses (Twilio's, a PBX's), each with many connections.
  settings.http.max_connections_per_peer =
      static_cast<size_t>(reader.Int("TELEPHONY_MAX_CONNECTIONS_PER_CLIENT", 256, 0, 1000000,
                                     "open connections per client address at most (0: no cap)"));
  settings.http.max_in_flight = static_cast<size_t>(reader.Int(
      "TELEPHONY_MAX_IN_FLIGHT", 2048, 1, 1000000, "requests in progress at most (then 503)"));
  settings.http.idle_timeout =
      reader.Millis("TELEPHONY_READ_TIMEOUT_MS", std::chrono::milliseconds(10000),
                    "time to read a whole request (and keep-alive idle time)");
  // A call event is a few hundred bytes; Twilio's callbacks about 1-2 KiB.
  settings.http.max_body_bytes = static_cast<size_t>(reader.Int(
      "TELEPHONY_MAX_BODY_BYTES", 16384, 1024, 1024 * 1024, "largest accepted body, bytes (413)"));
  settings.http.shutdown_grace =
      reader.Millis("TELEPHONY_SHUTDOWN_GRACE_MS", std::chrono::milliseconds(10000),
                    "on SIGTERM, time given to requests in flight");
  settings.shutdown_delay =
      reader.Millis("TELEPHONY_SHUTDOWN_DELAY_MS", std::chrono::milliseconds(0),
                    "on SIGTERM, time still served after /readyz turned 503");
  settings.http.handle_signals = true;
  settings.http.operations_routes = false;

  settings.ops.address =
      reader.String("TELEPHONY_OPS_ADDRESS", "127.0.0.1", "operations address to listen on");
  settings.ops.port = static_cast<int>(reader.Int("TELEPHONY_OPS_PORT", 9083, 0, 65535,
                                                  "operations port: /healthz, /readyz, /metrics"));
  settings.ops.threads = 1;
  settings.ops.max_connections = 64;
  settings.ops.idle_timeout = std::chrono::milliseconds(10000);

  settings.kafka_brokers =
      reader.String("TELEPHONY_KAFKA_BROKERS", "", "Kafka bootstrap servers (required)");
  if (settings.kafka_brokers.empty()) {
    reader.Fail("TELEPHONY_KAFKA_BROKERS", "required");
  }
  settings.delivery_timeout =
      reader.Millis("TELEPHONY_DELIVERY_TIMEOUT_MS", std::chrono::milliseconds(3000),
                    "time Kafka has to acknowledge an event before the answer is 503");
  if (settings.delivery_timeout < std::chrono::milliseconds(100)) {
    reader.Fail("TELEPHONY_DELIVERY_TIMEOUT_MS", "at least 100 ms");
  }
  // Every answer waits for Kafka's acknowledgement, so the time a message waits for others to
  // share its produce request is on every webhook's latency; under load the batches fill
  // anyway. Measured (docs/performance.md, bench (d)): 1 ms answered 13 % more reports a second
  // than librdkafka's default of 5 ms, for less CPU per report.
  settings.kafka_linger =
      reader.Millis("TELEPHONY_KAFKA_LINGER_MS", std::chrono::milliseconds(1),
                    "time an event waits to share a Kafka batch (librdkafka's linger.ms)");
  if (settings.kafka_linger > std::chrono::milliseconds(1000)) {
    reader.Fail("TELEPHONY_KAFKA_LINGER_MS", "at most 1000");
  }

  ServiceOptions& service = settings.service;
  service.default_region =
      reader.String("TELEPHONY_DEFAULT_REGION", "FR", "default phone region (ISO 3166 alpha-2)");
  if (auto status = identity::ValidateRegion(service.default_region); !status.ok()) {
    reader.Fail("TELEPHONY_DEFAULT_REGION", std::string(status.message()));
  }
  // Times a PBX writes without an offset (the generic API's, an Asterisk Cdr's) are its wall
  // clock: read in its zone, from the system's tz database (tzdata).
  const std::string time_zone = reader.String(
      "TELEPHONY_PBX_TIME_ZONE", "UTC",
      "IANA time zone of the PBX's clock (Europe/Paris): times it sends without an offset are "
      "read in it");
  if (!absl::LoadTimeZone(time_zone, &service.pbx_time_zone)) {
    reader.Fail("TELEPHONY_PBX_TIME_ZONE",
                "unknown time zone '" + time_zone +
                    "' (an IANA name such as Europe/Paris, from the tz database: tzdata)");
  }
  service.webhook_secret = reader.Secret(
      "TELEPHONY_WEBHOOK_SECRET", "HMAC-SHA256 key of POST /v1/calls/events (empty: API off)");
  if (!service.webhook_secret.empty() && service.webhook_secret.size() < 16) {
    reader.Fail("TELEPHONY_WEBHOOK_SECRET", "at least 16 bytes");
  }
  service.signature_window = std::chrono::seconds(
      reader.Int("TELEPHONY_SIGNATURE_WINDOW_S", 300, 10, 3600,
                 "accepted distance between the signed timestamp and our clock, seconds"));
  service.twilio_auth_token =
      reader.Secret("TELEPHONY_TWILIO_AUTH_TOKEN", "Twilio auth token (empty: Twilio routes off)");
  service.twilio_public_url = reader.String(
      "TELEPHONY_TWILIO_PUBLIC_URL", "",
      "the URL Twilio posts to, up to the service's root (https://leads.example/telephony)");
  if (!service.twilio_auth_token.empty() && service.twilio_public_url.rfind("https://", 0) != 0 &&
      service.twilio_public_url.rfind("http://", 0) != 0) {
    reader.Fail("TELEPHONY_TWILIO_PUBLIC_URL",
                "required with TELEPHONY_TWILIO_AUTH_TOKEN: an http(s) URL");
  }
  // Whose SIP users are our agents (a desk phone, a softphone registered on the account);
  // another Twilio account's SIP user calling us is a customer.
  const std::string sip_domains = reader.String(
      "TELEPHONY_TWILIO_SIP_DOMAINS", "",
      "the Twilio account's SIP Domains, comma-separated (acme.sip.twilio.com): a call from a "
      "user on one is an agent's outbound call (empty: no SIP caller is ours)");
  if (auto domains = ParseTwilioSipDomains(sip_domains); domains.ok()) {
    service.twilio_sip_domains = *std::move(domains);
  } else {
    reader.Fail("TELEPHONY_TWILIO_SIP_DOMAINS", std::string(domains.status().message()));
  }
  // Proxies (load balancers) whose X-Forwarded-For is believed, as CIDR ranges; the sender
  // recorded in the event is the rightmost entry that is not one of them.
  std::string trusted = reader.String("TELEPHONY_TRUSTED_PROXIES", "",
                                      "trusted proxies, comma-separated CIDR ranges (empty: none)");
  if (auto proxies = ingest::TrustedProxies::Parse(trusted); proxies.ok()) {
    service.trusted_proxies = *proxies;
  } else {
    reader.Fail("TELEPHONY_TRUSTED_PROXIES", std::string(proxies.status().message()));
  }
  service.calls.max_open_calls = static_cast<size_t>(reader.Int(
      "TELEPHONY_MAX_OPEN_CALLS", 10000, 1, 10000000, "calls waiting for their outcome at most"));
  // A call's reports: ringing, answered, the final state, a few retries and legs. A list past
  // this is a provider replaying or a runaway sender, not a call.
  service.calls.max_updates_per_call = static_cast<size_t>(
      reader.Int("TELEPHONY_MAX_UPDATES_PER_CALL", 64, 4, 10000,
                 "reports kept per call at most; past it an intermediate state is refused (422) "
                 "and a final one settles the call at once"));
  // A report bringing a recording after its call was settled publishes it as its own event:
  // bounded per call (a sender posting ever-new URLs), by default at crm-core's 20 recordings
  // per activity, past which crm-core drops them anyway.
  service.calls.max_late_recordings = static_cast<size_t>(
      reader.Int("TELEPHONY_MAX_LATE_RECORDINGS", 20, 0, 1000,
                 "recordings of one settled call published as their own events after it at "
                 "most; past it a report bringing another is answered without publishing it"));
  service.calls.open_ttl = std::chrono::seconds(
      // At most 20 h: a call's reports are kept 24 h from its first (finished_ttl), and a
      // quiet call must still be readable when its timeout publishes it.
      reader.Int("TELEPHONY_CALL_TIMEOUT_S", 4 * 3600, 60, 20 * 3600,
                 "a call without news this long is published from what is known (incomplete)"));
  service.calls.max_finished_calls =
      static_cast<size_t>(reader.Int("TELEPHONY_MAX_FINISHED_CALLS", 10000, 0, 10000000,
                                     "settled calls remembered for retries and late reports"));
  service.calls.settle_window = reader.Millis(
      "TELEPHONY_SETTLE_MS", std::chrono::milliseconds(2000),
      "how long an unanswered outcome (generic API) or Twilio's parent \"completed\" waits for "
      "a report deciding otherwise (an answer, a <Dial> action) before it is published");
  if (service.calls.settle_window > std::chrono::minutes(10)) {
    reader.Fail("TELEPHONY_SETTLE_MS", "at most 600000 (10 minutes)");
  }
  service.calls.ring_window = std::chrono::seconds(reader.Int(
      "TELEPHONY_RING_WINDOW_S", 120, 1, 3600,
      "how long after its last report a call reported leg by leg (generic API) waits for a leg "
      "that rang and never reported its end, once another leg's unanswered end came"));
  service.max_parked = static_cast<size_t>(
      reader.Int("TELEPHONY_MAX_PARKED", 1000, 1, 1000000,
                 "settling reports kept unanswered until Kafka has their call (then 503)"));
  settings.park_poll = reader.Millis(
      "TELEPHONY_PARK_POLL_MS", std::chrono::milliseconds(250),
      "how often parked reports look in the call store for a call another replica settled");
  if (settings.park_poll < std::chrono::milliseconds(10) ||
      settings.park_poll > std::chrono::milliseconds(1000)) {
    reader.Fail("TELEPHONY_PARK_POLL_MS", "between 10 and 1000");
  }
  // The settle window, the ticker's period (1 s) that publishes it, and Kafka's answer.
  service.parked_timeout =
      service.calls.settle_window + std::chrono::seconds(1) + settings.delivery_timeout;
  // A request is always answered by us, never cut by the server's own timeout: a parked one
  // waits at most parked_timeout, then one poll, then its own publication (one delivery
  // timeout); a direct one its publication. The margin covers the call store's round trips.
  settings.http.handler_timeout = service.parked_timeout + settings.park_poll +
                                  settings.delivery_timeout + std::chrono::seconds(2);
  // The state of calls shared by the replicas (docs/telephony-ingest.md, "Several replicas").
  std::string redis_host = reader.String(
      "TELEPHONY_REDIS_HOST", "",
      "Redis holding the state of calls for every replica (empty: in this process only)");
  redis::Options redis;
  redis.host = redis_host;
  redis.port = static_cast<int>(reader.Int("TELEPHONY_REDIS_PORT", 6379, 1, 65535, "Redis port"));
  // Same name in every service (<SERVICE>_REDIS_PREFIX, as CRM_REDIS_PREFIX).
  redis.key_prefix = reader.String("TELEPHONY_REDIS_PREFIX",
                                   "telephony:", "prefix of every Redis key this service writes");
  redis.timeout = reader.Millis("TELEPHONY_REDIS_TIMEOUT_MS", std::chrono::milliseconds(200),
                                "Redis connect and round-trip timeout");
  // One pipelined connection (RedisCallStore): requests do not wait on Redis in their threads.
  redis.connections = 1;
  service.max_store_waiting = static_cast<size_t>(reader.Int(
      "TELEPHONY_MAX_STORE_WAITING", 1024, 1, 1000000,
      "reports whose request waits for the call store (Redis) at once, then 503 + Retry-After"));
  if (!redis_host.empty()) {
    settings.redis = redis;
  }
  service.max_background_pending = static_cast<size_t>(reader.Int(
      "TELEPHONY_MAX_BACKGROUND_PENDING", 10000, 1, 10000000,
      "finished calls (Asterisk, expiry) kept for another try after Kafka refused them"));

  std::string ami_host = reader.String("TELEPHONY_AMI_HOST", "", "Asterisk AMI host (empty: off)");
  AmiOptions ami;
  ami.host = ami_host;
  ami.port =
      static_cast<int>(reader.Int("TELEPHONY_AMI_PORT", 5038, 1, 65535, "Asterisk AMI port"));
  ami.username = reader.String("TELEPHONY_AMI_USERNAME", "", "AMI user (manager.conf)");
  ami.secret = reader.Secret("TELEPHONY_AMI_SECRET", "AMI user's secret");
  ami.reconnect_min =
      reader.Millis("TELEPHONY_AMI_RECONNECT_MIN_MS", std::chrono::milliseconds(500),
                    "first wait before reconnecting to AMI (doubles up to the max)");
  ami.reconnect_max =
      reader.Millis("TELEPHONY_AMI_RECONNECT_MAX_MS", std::chrono::milliseconds(30000),
                    "longest wait between AMI reconnects");
  ami.extension_max_digits = static_cast<int>(
      reader.Int("TELEPHONY_AMI_EXTENSION_MAX_DIGITS", 5, 1, 8,
                 "caller ids this short are internal extensions, not customers (Asterisk, and "
                 "the generic API's extension-to-extension calls)"));
  service.extension_max_digits = ami.extension_max_digits;
  ami.outside_line_prefix = reader.String(
      "TELEPHONY_AMI_OUTSIDE_LINE_PREFIX", "",
      "digits an extension dials before a number for an outside line (e.g. 0); removed from "
      "outbound Asterisk calls' numbers");
  if (!ami.outside_line_prefix.empty() &&
      (ami.outside_line_prefix.size() > 4 ||
       !std::all_of(ami.outside_line_prefix.begin(), ami.outside_line_prefix.end(),
                    [](char c) { return c >= '0' && c <= '9'; }))) {
    reader.Fail("TELEPHONY_AMI_OUTSIDE_LINE_PREFIX", "1 to 4 digits");
  }
  ami.line = reader.String("TELEPHONY_AMI_LINE", "",
                           "line name for Asterisk calls (default: the dialled number)");
  ami.time_zone = service.pbx_time_zone;
  ami.max_frame_bytes = static_cast<size_t>(reader.Int("TELEPHONY_AMI_MAX_FRAME_BYTES", 65536, 1024,
                                                       1048576, "largest AMI message, bytes"));
  if (!ami_host.empty()) {
    if (ami.username.empty()) {
      reader.Fail("TELEPHONY_AMI_USERNAME", "required with TELEPHONY_AMI_HOST");
    }
    settings.ami = ami;
  }
  settings.log = log::ReadOptions(reader);
  return settings;
}

}  // namespace leadflow::telephony
