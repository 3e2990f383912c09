#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "http/server.h"
#include "kafka/types.h"
#include "metrics/metrics.h"
#include "webform-ingest/body.h"
#include "webform-ingest/forms.h"
#include "webform-ingest/submission.h"

namespace leadflow::webform {

/// Where accepted events go (Kafka in production, a fake in unit tests).
class Publisher {
 public:
  virtual ~Publisher() = default;
  /// `done` runs once, on any thread, after the event is durable (OK) or could not be.
  virtual void Publish(const std::string& key, const std::string& value,
                       const std::vector<kafka::Header>& headers,
                       std::function<void(absl::Status)> done) = 0;
};

/// The fast-path state kept in Redis. Asynchronous, so that no HTTP thread waits on a round
/// trip; `done` runs once, on any thread. Failures are Unavailable; callers degrade.
class Store {
 public:
  using CountDone = std::function<void(absl::StatusOr<int64_t>)>;
  using ClaimDone = std::function<void(absl::StatusOr<std::optional<std::string>>)>;
  virtual ~Store() = default;
  /// Counts one request of `client` in the current one-minute window; gives the count.
  virtual void CountRequest(const std::string& client, int64_t window, CountDone done) = 0;
  /// Records `event_id` for `fingerprint` unless one is recorded already; gives the earlier
  /// id, or std::nullopt when `event_id` was recorded.
  virtual void ClaimFingerprint(const std::string& fingerprint, const std::string& event_id,
                                std::chrono::seconds ttl, ClaimDone done) = 0;
};

struct ServiceOptions {
  SubmissionOptions submission;
  BodyLimits body_limits;
  FormsConfig forms;
  /// Requests a client IP may make a minute; 0 turns the limit off.
  int64_t rate_limit_per_minute = 0;
  /// Take the client IP from the last X-Forwarded-For entry (behind one trusted proxy).
  bool trust_forwarded_for = false;
  /// How long a double submit is recognised without an idempotency key.
  std::chrono::seconds duplicate_window{600};
  /// Retry-After, in seconds, when Kafka did not take the event.
  int unavailable_retry_after_seconds = 5;
};

/// The web form endpoint, free of HTTP plumbing so that unit tests drive it directly.
class WebformService {
 public:
  using Reply = std::function<void(http::Response)>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  WebformService(ServiceOptions options, Publisher* publisher, Store* store,
                 metrics::Registry* registry, Clock clock = {});

  /// POST /v1/forms/:form_id/submissions. `reply` runs once, maybe on another thread.
  void HandleSubmission(const http::Request& request, Reply reply);
  /// OPTIONS /v1/forms/:form_id/submissions (CORS preflight).
  http::Response HandlePreflight(const http::Request& request) const;

  /// Adds both routes to `server`.
  void Register(http::Server* server);

  /// The client address used for rate limiting and recorded in the event.
  std::string ClientIp(const http::Request& request) const;

 private:
  struct Pending;
  void AfterRateLimit(const std::shared_ptr<Pending>& pending);
  void Fail(const Pending& pending, http::Response response, const std::string& code);
  http::Response Reject(http::Response response, const std::string& code);
  void Publish(events::v1::InboundEvent event, const std::string& key,
               const std::optional<std::string>& traceparent,
               std::vector<http::HeaderField> cors_headers, Reply reply);

  const ServiceOptions options_;
  Publisher* publisher_;
  Store* store_;
  Clock clock_;
  metrics::Counter* accepted_;
  metrics::Family<metrics::Counter>* rejected_;
  metrics::Family<metrics::Counter>* spam_;
  metrics::Counter* duplicates_;
  metrics::Counter* kafka_failures_;
  metrics::Family<metrics::Counter>* redis_failures_;
};

}  // namespace leadflow::webform
