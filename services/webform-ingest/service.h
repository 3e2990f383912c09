#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "http/server.h"
#include "ingest/client_ip.h"
#include "ingest/publish.h"
#include "ingest/store.h"
#include "kafka/types.h"
#include "metrics/metrics.h"
#include "webform-ingest/body.h"
#include "webform-ingest/forms.h"
#include "webform-ingest/submission.h"

namespace leadflow::webform {

using ingest::Publisher;
using ingest::Store;

struct ServiceOptions {
  SubmissionOptions submission;
  BodyLimits body_limits;
  FormsConfig forms;
  /// Requests a client IP may make a minute; 0 turns the limit off.
  int64_t rate_limit_per_minute = 0;
  /// Proxies whose X-Forwarded-For is believed (ingest::ClientIp); empty: the TCP peer.
  ingest::TrustedProxies trusted_proxies;
  /// How long a double submit is recognised without an idempotency key.
  std::chrono::seconds duplicate_window{600};
  /// How long an Idempotency-Key stays bound to the content first sent with it.
  std::chrono::seconds idempotency_window{24 * 3600};
  /// How many clients refused by the rate limit in a minute are remembered, so that their
  /// next requests are checked before their body is parsed.
  size_t max_limited_clients = 10000;
  /// Retry-After, in seconds, when Kafka did not take the event or we are overloaded.
  int unavailable_retry_after_seconds = 5;
};

/// The web form endpoint, free of HTTP plumbing so that unit tests drive it directly.
class WebformService {
 public:
  using Reply = std::function<void(http::Response)>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  /// One service per `registry`: it registers gauges read at scrape time, which a registry
  /// holds once (a second service on it throws std::invalid_argument).
  WebformService(ServiceOptions options, Publisher* publisher, Store* store,
                 metrics::Registry* registry, Clock clock = {});

  /// POST /v1/forms/:form_id/submissions. `reply` runs once, maybe on another thread.
  /// A browser navigation (a plain HTML form posted without script) gets 303 to the form's
  /// pages or a small HTML page instead of JSON.
  void HandleSubmission(const http::Request& request, Reply reply);
  /// OPTIONS /v1/forms/:form_id/submissions (CORS preflight).
  http::Response HandlePreflight(const http::Request& request) const;

  /// Adds both routes to `server`.
  void Register(http::Server* server);

  /// The client address used for rate limiting and recorded in the event.
  std::string ClientIp(const http::Request& request) const;

 private:
  struct Pending;
  /// Parses and checks the submission, then publishes it after one Redis step (rate limit and
  /// idempotency claim together).
  void Process(const std::shared_ptr<Pending>& pending, const http::Request& request);
  /// Runs `then` once the rate limit let the request through (at once when it was counted
  /// already or is off); answers 429 or 503 otherwise.
  void AfterRateLimit(const std::shared_ptr<Pending>& pending, std::function<void()> then);
  /// Answers a refusal (4xx) once the rate limit counted the request.
  void Refuse(const std::shared_ptr<Pending>& pending, http::Response response,
              const std::string& code);
  /// Whether the decision lets the request go on; answers it (429, 503) otherwise.
  bool Admit(const Pending& pending, ingest::RateLimiter::Decision decision);
  /// Whether this client was refused by the rate limit earlier in this minute.
  bool LimitedThisMinute(const std::string& client_ip, std::chrono::system_clock::time_point now);
  void Fail(const Pending& pending, http::Response response, const std::string& code);
  http::Response Reject(http::Response response, const std::string& code);
  /// `on_refused` (optional) runs when Kafka did not take the event.
  void Publish(const std::shared_ptr<Pending>& pending, events::v1::InboundEvent event,
               const std::string& key, std::function<void()> on_refused = {});
  void Answer(const Pending& pending, http::Response response);

  /// Invoked when the producer reports a fatal error through a delivery (in addition to its
  /// own on_fatal); set by main.
 public:
  std::function<void(const absl::Status&)> on_fatal;

 private:
  const ServiceOptions options_;
  Publisher* publisher_;
  Store* store_;
  ingest::RateLimiter rate_limiter_;
  Clock clock_;
  metrics::Counter* accepted_;
  metrics::Family<metrics::Counter>* rejected_;
  metrics::Family<metrics::Counter>* spam_;
  metrics::Counter* duplicates_;
  metrics::Family<metrics::Counter>* kafka_failures_;
  metrics::Family<metrics::Counter>* redis_failures_;
  metrics::Counter* overloaded_;
  metrics::Counter* idempotency_reused_;

  // Rate-limit subjects (ingest::RateLimitSubject: an IPv6 client's /64) refused in the current
  // minute: their next requests are checked before their body is parsed. Bounded
  // (max_limited_clients); past the bound a client is simply checked with its claim, as any
  // other, and counted. Shared with the gauge that reads it at scrape time.
  struct LimitedClients {
    std::mutex mutex;
    int64_t minute = -1;
    std::unordered_set<std::string> subjects;
  };
  std::shared_ptr<LimitedClients> limited_ = std::make_shared<LimitedClients>();
  metrics::Counter* limited_untracked_;
};

}  // namespace leadflow::webform
