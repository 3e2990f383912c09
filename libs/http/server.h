#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "metrics/metrics.h"

namespace leadflow::http {

struct HeaderField {
  std::string name;
  std::string value;
};

/// A request as a handler sees it: fully read, at most ServerOptions::max_body_bytes of body.
struct Request : std::enable_shared_from_this<Request> {
  std::string method;  // "GET", "POST", …
  std::string target;  // path and query as sent
  std::string path;    // target without the query
  std::string query;   // after '?', not decoded
  std::vector<HeaderField> headers;
  std::string body;
  std::string remote_address;  // the TCP peer's IP address
  /// Named parameters of the matched route ("/v1/forms/:form_id" gives "form_id").
  std::map<std::string, std::string> params;
  /// The pattern of the matched route: a low-cardinality metric label.
  std::string route;

  /// The first header with this name (case-insensitive), or std::nullopt.
  std::optional<std::string> Header(std::string_view name) const;
  /// The request, kept for as long as the holder needs it past the handler (an answer given
  /// from another thread): the server's own when the server made it (nothing copied), else a
  /// copy.
  std::shared_ptr<const Request> Hold() const;
};

struct Response {
  int status = 200;
  std::vector<HeaderField> headers;
  std::string body;

  /// A response with `Content-Type: application/json`.
  static Response Json(int status, std::string json);
  /// `{"error": code}` plus an optional human-readable `reason`.
  static Response Error(int status, std::string_view code, std::string_view reason = "");
  Response& WithHeader(std::string name, std::string value);
};

/// Sends the answer to one request. Copyable; may be called from any thread (for example a
/// Kafka delivery callback), once: later calls are ignored. When the last copy is dropped
/// without an answer, the client gets a 500, so a request can never hang on a lost callback.
class Responder {
 public:
  struct State;
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}
  void Send(Response response) const;

 private:
  std::shared_ptr<State> state_;
};

/// Handles one request. It may answer before returning or later from another thread.
using Handler = std::function<void(const Request& request, Responder responder)>;

/// Whether the service can take traffic (e.g. Kafka answers); called by `GET /readyz`.
using ReadinessCheck = std::function<absl::Status()>;

/// A request the server answered itself with an error, before any handler: a path it does not
/// serve (404), a method the path does not take (405), a body over max_body_bytes (413), an
/// expectation other than 100-continue (417), too many requests in progress (503). `path` is
/// the client's, as sent.
struct Refusal {
  std::string_view route;  // the route pattern, "unmatched" for a 404
  std::string_view method;
  std::string_view path;
  int status = 0;
  std::string_view code;    // the answer's "error"
  std::string_view reason;  // its "reason", often empty
};
using RefusalObserver = std::function<void(const Refusal&)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  /// 0 picks a free port; see Server::port().
  int port = 0;
  /// Threads that run the event loop and the handlers.
  int threads = 2;
  /// A larger body is answered 413 without reaching the handler, as soon as that is known and
  /// without reading the rest: after the headers for a declared `Content-Length`, at the chunk
  /// that passes the limit for a chunked body; the connection is then closed. An acceptable
  /// `Expect: 100-continue` request gets `100 Continue` once its headers are read; another
  /// expectation is answered 417.
  size_t max_body_bytes = 1 << 20;
  size_t max_url_bytes = 8 * 1024;
  size_t max_header_name_bytes = 256;
  size_t max_header_value_bytes = 8 * 1024;
  size_t max_header_count = 100;
  /// A connection must deliver each whole request (headers and body) within this of the
  /// previous answer (or of being accepted); otherwise it is closed. Bounds idle keep-alive
  /// connections and slow senders alike.
  std::chrono::milliseconds idle_timeout{60000};
  /// Open connections at most (0: no limit). Past it, new connections wait in the kernel's
  /// accept queue until one closes; counted in http_connections_open.
  size_t max_connections = 0;
  /// Open connections one peer address (an IPv6 peer: its /64) may hold at most (0: no cap).
  /// Past it a new connection from that peer is closed at once, counted in
  /// http_connections_refused_total, so that one client cannot take every connection.
  size_t max_connections_per_peer = 0;
  /// Peers the cap does not apply to (e.g. trusted proxies, which carry many clients and must
  /// enforce per-client limits themselves). Called on an event-loop thread; must not block.
  std::function<bool(const std::string& peer_address)> connection_cap_exempt;
  /// Requests read and not yet answered at most (0: no limit). Past it a request is answered
  /// 503 with Retry-After at once, without reaching its handler, so that every queue behind
  /// the handlers (Redis, Kafka) holds at most this many requests' state.
  size_t max_in_flight = 0;
  /// Retry-After, in seconds, of that 503.
  int overload_retry_after_seconds = 1;
  /// Serve GET /healthz, /readyz and /metrics. A service's public server turns them off and
  /// runs a second, operations server (ingestion services: a separate port).
  bool operations_routes = true;
  /// A handler that has not answered by then gets its connection closed.
  std::chrono::milliseconds handler_timeout{30000};
  /// On shutdown, how long requests in flight may take to finish.
  std::chrono::milliseconds shutdown_grace{10000};
  /// Run() also returns on SIGTERM and SIGINT (for a service's main, not for tests).
  bool handle_signals = false;
};

/// An HTTP/1.1 server with, unless operations_routes is off, the routes of every LeadFlow
/// HTTP service built in:
/// `GET /healthz` (alive: 200), `GET /readyz` (the ReadinessCheck: 200, or 503 with the reason,
/// and 503 while shutting down) and `GET /metrics` (the registry, in Prometheus text format,
/// with http_requests_total{route,code} and http_request_duration_seconds{route} added).
/// A path that exists with another method is answered 405 with `Allow`; an unknown one 404.
///
/// Shutdown: stop accepting, let requests in flight finish (at most shutdown_grace), then
/// return from Run(). Answers still pending after that are dropped; destroy the server only
/// after the components that hold Responders (e.g. the Kafka producer) were flushed.
class Server {
 public:
  /// `registry` must outlive the server.
  Server(ServerOptions options, metrics::Registry* registry);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Adds a route before Start(). `path` is a pattern of literal segments and `:name`
  /// parameters, each standing for one non-empty segment: "/v1/forms/:form_id".
  void Route(std::string method, std::string path, Handler handler);
  /// Called by GET /readyz on an event-loop thread: it must answer from memory, never wait on
  /// I/O (see ingest::Readiness for checks run on their own thread).
  void SetReadinessCheck(ReadinessCheck check);
  /// Told of each Refusal, on an event-loop thread (it must not block): a service logs and
  /// counts them with its own refusals. Set before Start()/Run().
  void SetRefusalObserver(RefusalObserver observer);

  /// Binds and starts serving on background threads. Unavailable when the address cannot be
  /// bound.
  absl::Status Start();
  /// The bound port, after Start().
  int port() const;

  /// Starts if needed, serves until Stop() (or a signal when handle_signals), then shuts down
  /// gracefully. DeadlineExceeded when requests were still in flight at the end of the grace.
  absl::Status Run();
  /// Asks Run() to shut down and return. Thread-safe, returns at once.
  void Stop();
  /// Runs on Run()'s thread once a stop was asked for (Stop() or a signal), before the server
  /// stops accepting: e.g. turn readiness false and give load balancers time to notice.
  void SetBeforeShutdown(std::function<void()> hook);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The standard reason phrase of a status code ("Unprocessable Entity"); "Unknown" otherwise.
std::string_view ReasonPhrase(int status);

}  // namespace leadflow::http
