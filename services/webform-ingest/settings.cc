#include "webform-ingest/settings.h"

#include "absl/strings/str_cat.h"
#include "identity/identity.h"

namespace leadflow::webform {

Settings ReadSettings(config::Reader& reader) {
  Settings settings;
  // Where to listen: 127.0.0.1 locally; Kubernetes sets 0.0.0.0.
  settings.http.address =
      reader.String("WEBFORM_HTTP_ADDRESS", "127.0.0.1", "address to listen on");
  settings.http.port = static_cast<int>(
      reader.Int("WEBFORM_HTTP_PORT", 8081, 0, 65535, "HTTP port (0 picks a free one)"));
  // Event-loop threads; handlers never block on Kafka, so a few serve many requests.
  settings.http.threads =
      static_cast<int>(reader.Int("WEBFORM_HTTP_THREADS", 2, 1, 64, "HTTP event-loop threads"));
  // Open connections at most; past it new ones wait in the kernel's accept queue. Bounds the
  // file descriptors and memory half-sent requests can hold.
  settings.http.max_connections = static_cast<size_t>(
      reader.Int("WEBFORM_MAX_CONNECTIONS", 4096, 1, 1000000, "open client connections at most"));
  // Open connections one client address (IPv6: its /64) may hold at most; past it its new
  // connections are closed at once (http_connections_refused_total), so one client cannot
  // take every connection. Trusted proxies are exempt: they carry many clients, and must
  // enforce per-client limits themselves.
  settings.http.max_connections_per_peer = static_cast<size_t>(
      reader.Int("WEBFORM_MAX_CONNECTIONS_PER_CLIENT", 64, 0, 1000000,
                 "open connections per client address at most (0: no cap; trusted proxies "
                 "exempt)"));
  // Requests read and not answered yet at most; past it 503 with Retry-After at once. Bounds
  // every queue behind (Redis, Kafka) and the bodies they hold.
  settings.http.max_in_flight = static_cast<size_t>(reader.Int(
      "WEBFORM_MAX_IN_FLIGHT", 2048, 1, 1000000, "requests in progress at most (then 503)"));
  // A connection must deliver each whole request (headers and body) within this; slow or
  // stalled senders are cut off instead of holding a connection for a minute.
  settings.http.idle_timeout =
      reader.Millis("WEBFORM_READ_TIMEOUT_MS", std::chrono::milliseconds(10000),
                    "time to read a whole request (and keep-alive idle time)");
  // Larger bodies get 413; a form has no reason to be bigger.
  settings.http.max_body_bytes = static_cast<size_t>(reader.Int(
      "WEBFORM_MAX_BODY_BYTES", 65536, 1024, 16 * 1024 * 1024, "largest accepted body, bytes"));
  // On SIGTERM, how long requests in flight may take before the process exits anyway.
  settings.http.shutdown_grace =
      reader.Millis("WEBFORM_SHUTDOWN_GRACE_MS", std::chrono::milliseconds(10000),
                    "on SIGTERM, time given to requests in flight");
  // On SIGTERM /readyz turns 503 at once; the public port then goes on serving this long, so
  // that a load balancer polling /readyz stops sending before connections are refused.
  // Kubernetes removes the endpoint by itself (with a preStop sleep): 0 there.
  settings.shutdown_delay = reader.Millis("WEBFORM_SHUTDOWN_DELAY_MS", std::chrono::milliseconds(0),
                                          "on SIGTERM, time still served after /readyz turned 503");
  settings.http.handle_signals = true;
  settings.http.operations_routes = false;

  // The operations port (health, readiness, metrics) for the orchestrator and Prometheus,
  // apart from the public one, as crm-core's.
  settings.ops.address =
      reader.String("WEBFORM_OPS_ADDRESS", "127.0.0.1", "operations address to listen on");
  settings.ops.port = static_cast<int>(reader.Int("WEBFORM_OPS_PORT", 9081, 0, 65535,
                                                  "operations port: /healthz, /readyz, /metrics"));
  settings.ops.threads = 1;
  settings.ops.max_connections = 64;
  settings.ops.idle_timeout = std::chrono::milliseconds(10000);

  // Required: the bootstrap servers (the dev broker prints its address).
  settings.kafka_brokers =
      reader.String("WEBFORM_KAFKA_BROKERS", "", "Kafka bootstrap servers (required)");
  if (settings.kafka_brokers.empty()) {
    reader.Fail("WEBFORM_KAFKA_BROKERS", "required");
  }
  // A submission waits at most this for Kafka's acknowledgement before it is answered 503.
  settings.delivery_timeout =
      reader.Millis("WEBFORM_DELIVERY_TIMEOUT_MS", std::chrono::milliseconds(3000),
                    "time Kafka has to acknowledge an event before the answer is 503");
  if (settings.delivery_timeout < std::chrono::milliseconds(100)) {
    reader.Fail("WEBFORM_DELIVERY_TIMEOUT_MS", "at least 100 ms");
  }
  // The handler timeout must leave room for the delivery timeout.
  settings.http.handler_timeout = settings.delivery_timeout + std::chrono::seconds(5);

  // Redis: rate limits and double-submit fingerprints; optional at run time (degrades).
  settings.redis.host = reader.String("WEBFORM_REDIS_HOST", "127.0.0.1", "Redis host");
  settings.redis.port =
      static_cast<int>(reader.Int("WEBFORM_REDIS_PORT", 6379, 1, 65535, "Redis port"));
  // Same name in every service (<SERVICE>_REDIS_PREFIX, as CRM_REDIS_PREFIX).
  settings.redis.key_prefix = reader.String(
      "WEBFORM_REDIS_PREFIX", "webform:", "prefix of every Redis key this service writes");
  // Redis commands waiting at most; each holds a request's state. Beyond it: 503, limits on.
  settings.redis_max_pending = static_cast<size_t>(reader.Int(
      "WEBFORM_REDIS_MAX_PENDING", 2048, 1, 1000000, "Redis commands waiting at most (then 503)"));
  settings.redis.timeout = reader.Millis("WEBFORM_REDIS_TIMEOUT_MS", std::chrono::milliseconds(200),
                                         "Redis connect and round-trip timeout");

  // Phone numbers without a country code are read as numbers of this region.
  settings.service.submission.default_region =
      reader.String("WEBFORM_DEFAULT_REGION", "FR", "default phone region (ISO 3166 alpha-2)");
  if (auto status = identity::ValidateRegion(settings.service.submission.default_region);
      !status.ok()) {
    reader.Fail("WEBFORM_DEFAULT_REGION", std::string(status.message()));
  }
  // A hidden field people leave empty and bots fill; filled means spam. Empty turns it off.
  settings.service.submission.honeypot_field =
      reader.String("WEBFORM_HONEYPOT_FIELD", "_hp", "honeypot field name (empty: off)");
  // Per client IP and minute; 0 turns the limit off.
  settings.service.rate_limit_per_minute =
      reader.Int("WEBFORM_RATE_LIMIT_PER_MINUTE", 60, 0, 1000000,
                 "submissions per client IP a minute (0: off)");
  // Optional JSON file listing the forms and their allowed origins.
  settings.forms_file =
      reader.String("WEBFORM_FORMS_FILE", "", "forms and allowed origins (JSON); empty: any");
  if (!settings.forms_file.empty()) {
    auto forms = FormsConfig::Load(settings.forms_file);
    if (!forms.ok()) {
      reader.Fail("WEBFORM_FORMS_FILE", std::string(forms.status().message()));
    } else {
      settings.service.forms = *forms;
    }
  }
  // Proxies (load balancers, CDN) whose X-Forwarded-For is believed, as CIDR ranges; the
  // client is the rightmost entry that is not one of them. Empty: the TCP peer is the client.
  std::string trusted = reader.String("WEBFORM_TRUSTED_PROXIES", "",
                                      "trusted proxies, comma-separated CIDR ranges (empty: none)");
  if (auto proxies = ingest::TrustedProxies::Parse(trusted); proxies.ok()) {
    settings.service.trusted_proxies = *proxies;
    if (!proxies->empty()) {
      settings.http.connection_cap_exempt = [proxies = *proxies](const std::string& peer) {
        std::optional<ingest::IpAddress> address = ingest::IpAddress::Parse(peer);
        return address && proxies.Contains(*address);
      };
    }
  } else {
    reader.Fail("WEBFORM_TRUSTED_PROXIES", std::string(proxies.status().message()));
  }

  settings.log = log::ReadOptions(reader);
  return settings;
}

}  // namespace leadflow::webform
