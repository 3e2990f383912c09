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
  // Larger bodies get 413; a form has no reason to be bigger.
  settings.http.max_body_bytes = static_cast<size_t>(reader.Int(
      "WEBFORM_MAX_BODY_BYTES", 65536, 1024, 16 * 1024 * 1024, "largest accepted body, bytes"));
  // On SIGTERM, how long requests in flight may take before the process exits anyway.
  settings.http.shutdown_grace =
      reader.Millis("WEBFORM_SHUTDOWN_GRACE_MS", std::chrono::milliseconds(10000),
                    "on SIGTERM, time given to requests in flight");
  settings.http.handle_signals = true;

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
  settings.redis.key_prefix = reader.String(
      "WEBFORM_REDIS_KEY_PREFIX", "webform:", "prefix of every Redis key this service writes");
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
  // Only behind a proxy that sets X-Forwarded-For: its last entry becomes the client IP.
  settings.service.trust_forwarded_for =
      reader.Bool("WEBFORM_TRUST_FORWARDED_FOR", false, "take the client IP from X-Forwarded-For");

  settings.log = log::ReadOptions(reader);
  return settings;
}

}  // namespace leadflow::webform
