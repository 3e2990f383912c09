#include "http/server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <restinio/all.hpp>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

// An answer between a request's headers and its body.
//
// RESTinio 0.6 reads a whole request before its handler sees it, closes the connection without
// a word when a body (declared or read) passes its cap, and ignores `Expect: 100-continue`.
// It has no hook between the headers and the body, but two of its customisation points give
// one, without patching it:
// - `Traits::http_methods_mapper_t` is the template argument of
//   `impl::create_parser_settings<>()`, which builds the http_parser callbacks; specialised for
//   our mapper, it replaces the headers-complete and body callbacks. A request that must be
//   refused (a declared `Content-Length` over the limit, a chunked body passing it, an
//   expectation other than 100-continue) is ended right there, its body unread, and marked
//   with a pseudo-header no client can send (names cannot contain ':'); Server::Impl::Handle
//   answers it at once and closes the connection.
// - `Traits::stream_socket_t`: a plain TCP socket that tells the parser callbacks which
//   connection they parse (a thread-local set while RESTinio handles what it read), so that an
//   acceptable `Expect: 100-continue` request gets its `100 Continue` as soon as its headers
//   are read. Nothing else can be writing then: RESTinio reads a connection's next request only
//   once the previous answer is written (max_pipelined_requests stays 1).
static_assert(RESTINIO_VERSION_MAJOR == 0 && RESTINIO_VERSION_MINOR == 6,
              "the early answers below rely on RESTinio 0.6's parser callbacks; re-check them");

namespace leadflow::http {
namespace {

// The pseudo-header that marks a request ended after its headers; its value is the error code.
constexpr std::string_view kRefusedField = ":leadflow-refused";
constexpr std::string_view kBodyTooLarge = "body_too_large";
constexpr std::string_view kExpectationFailed = "expectation_failed";

class FrontSocket;
// The socket whose input the parser callbacks of this thread are handling, or nullptr.
thread_local FrontSocket* parsing_socket = nullptr;

// Reads and drops what a client still sends after its request was refused, for a while, then
// closes. Closing a socket with unread input makes the kernel reset the connection, and the
// client may then lose the answer it was sent (nginx and Apache linger the same way).
class Lingerer : public std::enable_shared_from_this<Lingerer> {
 public:
  using Socket = restinio::asio_ns::ip::tcp::socket;
  static constexpr std::chrono::seconds kTime{2};
  // Sockets lingering at once at most (they are no longer counted as connections); past it a
  // socket is closed at once.
  static constexpr int kMax = 1024;

  static void Start(Socket socket) {
    if (count.fetch_add(1) >= kMax) {
      --count;
      restinio::asio_ns::error_code ignored;
      socket.close(ignored);
      return;
    }
    auto lingerer = std::make_shared<Lingerer>(std::move(socket));
    lingerer->timer_.expires_after(kTime);
    lingerer->timer_.async_wait(restinio::asio_ns::bind_executor(
        lingerer->strand_, [lingerer](const restinio::asio_ns::error_code&) {
          restinio::asio_ns::error_code ignored;
          lingerer->socket_.close(ignored);
        }));
    restinio::asio_ns::dispatch(lingerer->strand_, [lingerer] { lingerer->Read(); });
  }

  explicit Lingerer(Socket socket)
      : socket_(std::move(socket)),
        strand_(restinio::asio_ns::make_strand(socket_.get_executor())),
        timer_(strand_) {}
  ~Lingerer() { --count; }

 private:
  void Read() {
    socket_.async_read_some(
        restinio::asio_ns::buffer(buffer_),
        restinio::asio_ns::bind_executor(
            strand_,
            [self = shared_from_this()](const restinio::asio_ns::error_code& error, std::size_t) {
              if (error) {  // end of input, or closed by the timer
                self->timer_.cancel();
                restinio::asio_ns::error_code ignored;
                self->socket_.close(ignored);
                return;
              }
              self->Read();
            }));
  }

  static inline std::atomic<int> count{0};
  Socket socket_;
  restinio::asio_ns::strand<Socket::executor_type> strand_;
  restinio::asio_ns::steady_timer timer_;
  std::array<char, 4096> buffer_;
};

// A plain TCP socket for RESTinio (Traits::stream_socket_t) that sets parsing_socket while
// RESTinio handles the bytes it read, and lingers on close after a refused request.
class FrontSocket {
 public:
  using Socket = restinio::asio_ns::ip::tcp::socket;
  using executor_type = restinio::default_asio_executor;

  explicit FrontSocket(restinio::asio_ns::io_context& io) : socket_(io) {}
  FrontSocket(FrontSocket&&) = default;
  FrontSocket& operator=(FrontSocket&&) = default;

  Socket& lowest_layer() { return socket_; }
  const Socket& lowest_layer() const { return socket_; }
  auto get_executor() { return socket_.get_executor(); }
  auto remote_endpoint() const { return socket_.remote_endpoint(); }
  bool is_open() const { return socket_.is_open(); }
  auto native_handle() { return socket_.native_handle(); }
  template <typename... Args>
  void cancel(Args&&... args) {
    socket_.cancel(std::forward<Args>(args)...);
  }
  // RESTinio shuts both directions down, then closes; after a refused request only our side is
  // shut (the answer is followed by FIN) and the client's is drained for a while (Lingerer).
  void shutdown(Socket::shutdown_type what, restinio::asio_ns::error_code& error) {
    socket_.shutdown(linger_ ? Socket::shutdown_send : what, error);
  }
  void close() {
    if (linger_ && socket_.is_open()) {
      linger_ = false;
      Lingerer::Start(std::move(socket_));
      return;
    }
    socket_.close();
  }
  void close(restinio::asio_ns::error_code& error) {
    if (linger_ && socket_.is_open()) {
      linger_ = false;
      Lingerer::Start(std::move(socket_));
      return;
    }
    socket_.close(error);
  }
  // The request being parsed is refused with part of its body unread.
  void LingerOnClose() { linger_ = true; }
  // Sends `100 Continue`. The send buffer is empty (nothing else is being written, see above),
  // so the 25 bytes go at once; if not, the client sends its body after its own wait (curl:
  // 1 s) and still gets the final answer.
  void SendContinue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    (void)!::send(socket_.native_handle(), kContinue.data(), kContinue.size(),
                  MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  template <typename... Args>
  auto async_write_some(Args&&... args) {
    return socket_.async_write_some(std::forward<Args>(args)...);
  }
  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    socket_.async_read_some(
        buffers, ParsingScope<std::decay_t<Handler>>{std::forward<Handler>(handler), this});
  }

 private:
  // RESTinio's read handler, run with parsing_socket set; on RESTinio's strand, as the handler
  // it wraps (its associated executor is passed on).
  template <typename Handler>
  struct ParsingScope {
    Handler handler;
    // Lives in RESTinio's connection, which `handler` keeps alive.
    FrontSocket* socket;
    using executor_type = restinio::asio_ns::associated_executor_t<Handler>;
    executor_type get_executor() const noexcept {
      return restinio::asio_ns::get_associated_executor(handler);
    }
    void operator()(const restinio::asio_ns::error_code& error, std::size_t length) {
      FrontSocket* outer = parsing_socket;
      parsing_socket = socket;
      handler(error, length);
      parsing_socket = outer;
    }
  };

  Socket socket_;
  bool linger_ = false;
};

// What RESTinio asks of a socket type, found by argument-dependent lookup (its own overloads take
// a plain tcp::socket or its TLS socket): no preparation before reading, no TLS.
template <typename Connection, typename StartRead, typename Failed>
void prepare_connection_and_start_read(FrontSocket&, Connection&, StartRead start_read, Failed) {
  start_read();
}
restinio::impl::tls_socket_t* make_tls_socket_pointer_for_state_listener(FrontSocket&) noexcept {
  return nullptr;
}

// Ends the request being parsed after its headers (or the part of its body read so far).
void Refuse(restinio::impl::http_parser_ctx_t* context, std::string_view code) {
  context->m_body.clear();
  context->m_chunked_info_block.m_chunks.clear();
  context->m_header.set_field(std::string(kRefusedField), std::string(code));
  if (parsing_socket != nullptr) {
    parsing_socket->LingerOnClose();
  }
}

int OnHeadersComplete(http_parser* parser) {
  auto* context = static_cast<restinio::impl::http_parser_ctx_t*>(parser->data);
  context->m_leading_headers_completed = true;
  const bool declared = parser->content_length != ULLONG_MAX && parser->content_length > 0;
  if (declared && parser->content_length > context->m_limits.max_body_size()) {
    Refuse(context, kBodyTooLarge);
    return 1;  // no body: the message is complete, and its body is never read
  }
  // HTTP/1.0 requests' Expect is ignored (RFC 9110, 10.1.1).
  const bool http11 =
      parser->http_major > 1 || (parser->http_major == 1 && parser->http_minor >= 1);
  auto expect = context->m_header.opt_value_of(restinio::http_field::expect);
  if (expect && http11) {
    absl::string_view value(expect->data(), expect->size());
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(value), "100-continue")) {
      Refuse(context, kExpectationFailed);
      return 1;
    }
    if ((declared || (parser->flags & F_CHUNKED) != 0) && parsing_socket != nullptr) {
      parsing_socket->SendContinue();
    }
  }
  if (declared) {
    try {
      context->m_body.reserve(static_cast<size_t>(parser->content_length));
    } catch (const std::exception&) {
      return -1;
    }
  }
  return 0;
}

}  // namespace

// The http_parser methods mapper of our Traits: RESTinio's own, under a type of ours, so that the
// parser settings can be specialised for it (below).
struct EarlyAnswerMethods : restinio::default_http_methods_t {};

namespace {

int OnBody(http_parser* parser, const char* data, size_t length) {
  auto* context = static_cast<restinio::impl::http_parser_ctx_t*>(parser->data);
  if (context->m_body.size() + length > context->m_limits.max_body_size()) {
    // Only a body of undeclared length (chunked) gets here: end the message now, unread.
    Refuse(context, kBodyTooLarge);
    return restinio::impl::restinio_message_complete_cb<EarlyAnswerMethods>(parser);
  }
  try {
    context->m_body.append(data, length);
  } catch (const std::exception&) {
    return -1;
  }
  return 0;
}

}  // namespace
}  // namespace leadflow::http

template <>
inline http_parser_settings
restinio::impl::create_parser_settings<leadflow::http::EarlyAnswerMethods>() noexcept {
  http_parser_settings settings = create_parser_settings<restinio::default_http_methods_t>();
  settings.on_headers_complete = [](http_parser* parser) -> int {
    return leadflow::http::OnHeadersComplete(parser);
  };
  settings.on_body = [](http_parser* parser, const char* data, size_t length) -> int {
    return leadflow::http::OnBody(parser, data, length);
  };
  settings.on_message_complete = [](http_parser* parser) -> int {
    return restinio_message_complete_cb<leadflow::http::EarlyAnswerMethods>(parser);
  };
  return settings;
}

namespace leadflow::http {
namespace {

// RESTinio's messages go to spdlog one level lower than RESTinio rates them: a client that
// sends garbage makes RESTinio log an "error", which is the client's problem, not ours.
class SpdLogger {
 public:
  template <typename Builder>
  void trace(Builder&& builder) const {
    if (spdlog::should_log(spdlog::level::trace)) {
      spdlog::trace("http: {}", builder());
    }
  }
  template <typename Builder>
  void info(Builder&& builder) const {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("http: {}", builder());
    }
  }
  template <typename Builder>
  void warn(Builder&& builder) const {
    if (spdlog::should_log(spdlog::level::info)) {
      spdlog::info("http: {}", builder());
    }
  }
  template <typename Builder>
  void error(Builder&& builder) const {
    if (spdlog::should_log(spdlog::level::info)) {
      spdlog::info("http: {}", builder());
    }
  }
};

// Open connections per peer (an IPv6 peer counted by its /64, which one host usually has
// whole), for ServerOptions::max_connections_per_peer.
struct PeerConnections {
  size_t cap = 0;  // 0: no cap
  std::function<bool(const std::string&)> exempt;
  metrics::Counter* refused = nullptr;
  std::mutex mutex;
  std::unordered_map<std::string, size_t> open;

  static std::string Key(const restinio::asio_ns::ip::address& address) {
    if (address.is_v6() && !address.to_v6().is_v4_mapped()) {
      auto bytes = address.to_v6().to_bytes();
      std::fill(bytes.begin() + 8, bytes.end(), 0);
      return restinio::asio_ns::ip::address_v6(bytes).to_string() + "/64";
    }
    return address.to_string();
  }
  void Changed(const restinio::endpoint_t& peer, int delta) {
    std::string key = Key(peer.address());
    std::lock_guard lock(mutex);
    size_t& count = open[key];
    if (delta > 0) {
      ++count;
    } else if (count <= 1) {
      open.erase(key);
    } else {
      --count;
    }
  }
  // Counted when a connection is set up (below), checked when the next one is accepted: a
  // burst of simultaneous accepts may pass the cap by the number of accepting threads.
  restinio::ip_blocker::inspection_result_t inspect(
      const restinio::ip_blocker::incoming_info_t& info) noexcept {
    if (cap == 0) {
      return restinio::ip_blocker::allow();
    }
    try {
      const auto address = info.remote_endpoint().address();
      if (exempt && exempt(address.to_string())) {
        return restinio::ip_blocker::allow();
      }
      std::string key = Key(address);
      std::lock_guard lock(mutex);
      auto found = open.find(key);
      if (found != open.end() && found->second >= cap) {
        refused->Increment();
        return restinio::ip_blocker::deny();
      }
    } catch (const std::exception&) {
      // No memory for a key: let it through rather than refuse everyone.
    }
    return restinio::ip_blocker::allow();
  }
};

// Counts open connections for http_connections_open, and per peer. RESTinio 0.6 can report a
// connection closed twice (a timeout closes it, then the aborted read closes it again), so each
// connection counts once: by its id, from accepted until the first closed. The set holds one id
// per open connection, so it is bounded by max_connections.
struct ConnectionListener {
  metrics::Gauge* open = nullptr;
  std::shared_ptr<PeerConnections> peers;
  std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
  std::shared_ptr<std::unordered_set<restinio::connection_id_t>> ids =
      std::make_shared<std::unordered_set<restinio::connection_id_t>>();

  void state_changed(const restinio::connection_state::notice_t& notice) noexcept {
    struct Visitor {
      bool opened;
      void operator()(const restinio::connection_state::accepted_t&) { opened = true; }
      void operator()(const restinio::connection_state::closed_t&) { opened = false; }
      void operator()(const restinio::connection_state::upgraded_to_websocket_t&) {
        opened = false;
      }
    };
    Visitor visitor{false};
    restinio::visit(visitor, notice.cause());
    try {
      {
        std::lock_guard lock(*mutex);
        bool changed = visitor.opened ? ids->insert(notice.connection_id()).second
                                      : ids->erase(notice.connection_id()) == 1;
        if (!changed) {
          return;
        }
      }
      int delta = visitor.opened ? 1 : -1;
      open->Add(delta);
      peers->Changed(notice.remote_endpoint(), delta);
    } catch (const std::exception&) {
      // No memory for the bookkeeping: the gauge may drift, the connection is served anyway.
    }
  }
};

// No router: one handler matches the few routes by segments (RESTinio's express router runs a
// std::regex per route and request, a visible share of the CPU at load).
struct Traits : public restinio::traits_t<restinio::asio_timer_manager_t, SpdLogger> {
  static constexpr bool use_connection_count_limiter = true;
  using connection_state_listener_t = ConnectionListener;
  using stream_socket_t = FrontSocket;
  using http_methods_mapper_t = EarlyAnswerMethods;
  using ip_blocker_t = PeerConnections;
};
using RestServer = restinio::http_server_t<Traits>;

std::string ToString(restinio::string_view_t text) { return std::string(text.data(), text.size()); }

// A pattern's segments: "/v1/forms/:form_id" gives {"v1", "forms", ":form_id"}.
std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = path.empty() || path[0] != '/' ? 0 : 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    segments.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

// Whether `path` matches `pattern`'s segments; fills the parameters.
bool Match(const std::vector<std::string>& pattern, std::string_view path,
           std::map<std::string, std::string>* params) {
  size_t start = path.empty() || path[0] != '/' ? 0 : 1;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (start > path.size()) {
      return false;
    }
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    std::string_view segment = path.substr(start, end - start);
    const std::string& expected = pattern[i];
    if (!expected.empty() && expected[0] == ':') {
      if (segment.empty()) {
        return false;
      }
      (*params)[expected.substr(1)] = std::string(segment);
    } else if (segment != expected) {
      return false;
    }
    start = end + 1;
  }
  return start == path.size() + 1;
}

}  // namespace

// What the server and every request's Responder share; lives as long as either.
struct Shared {
  std::mutex mutex;
  std::condition_variable changed;
  int in_flight = 0;
  bool stop_requested = false;
  std::atomic<bool> draining{false};
  std::map<Responder::State*, std::weak_ptr<Responder::State>> live;
  metrics::Family<metrics::Counter>* requests = nullptr;
  metrics::Family<metrics::Histogram>* durations = nullptr;
  metrics::Gauge* in_flight_gauge = nullptr;
  metrics::Counter* shed = nullptr;

  // A request stops being in flight once its answer is written (or could not be), so that
  // shutdown does not stop the event loop under an answer still being sent.
  void Finished(const std::string& route, int status,
                std::chrono::steady_clock::time_point started) {
    requests->WithLabels({route, std::to_string(status)}).Increment();
    durations->WithLabels({route}).Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    in_flight_gauge->Add(-1);
    std::lock_guard lock(mutex);
    --in_flight;
    // Only a shutdown waits for requests to finish; Run() waits on the same variable for
    // Stop(), and waking it for every answered request cost a context switch each.
    if (draining) {
      changed.notify_all();
    }
  }
};

// Lock order: a State's mutex, then Shared::mutex (never the other way round).
struct Responder::State {
  State(std::shared_ptr<Shared> shared_in, restinio::request_handle_t request_in,
        std::string route_in)
      : shared(std::move(shared_in)),
        request(std::move(request_in)),
        route(std::move(route_in)),
        started(std::chrono::steady_clock::now()) {}

  static std::shared_ptr<State> Create(std::shared_ptr<Shared> shared,
                                       restinio::request_handle_t request, std::string route) {
    auto state = std::make_shared<State>(shared, std::move(request), std::move(route));
    shared->in_flight_gauge->Add(1);
    std::lock_guard lock(shared->mutex);
    shared->live.emplace(state.get(), state);
    ++shared->in_flight;
    return state;
  }

  ~State() {
    {
      std::lock_guard lock(mutex);
      if (!answered) {
        answered = true;
        WriteLocked(Response::Error(500, "internal", "the request was dropped without an answer"));
      }
    }
    std::lock_guard lock(shared->mutex);
    shared->live.erase(this);
  }

  void Send(Response response) {
    std::lock_guard lock(mutex);
    if (answered) {
      return;
    }
    answered = true;
    WriteLocked(std::move(response));
  }

  void WriteLocked(Response response) {
    int status = response.status;
    auto finished = [shared = shared, route = route, started = started,
                     status](const restinio::asio_ns::error_code&) {
      shared->Finished(route, status, started);
    };
    if (!request) {
      finished({});  // the server is gone; the answer is dropped
      return;
    }
    try {
      auto builder = request->create_response(restinio::http_status_line_t{
          restinio::http_status_code_t{static_cast<std::uint16_t>(response.status)},
          std::string(ReasonPhrase(response.status))});
      for (HeaderField& header : response.headers) {
        builder.append_header(std::move(header.name), std::move(header.value));
      }
      if (shared->draining || close_connection) {
        builder.connection_close();
      }
      builder.set_body(std::move(response.body));
      builder.done(std::move(finished));  // RESTinio calls it once, even if the write fails
    } catch (const std::exception& error) {
      spdlog::warn("http: could not send a response: {}", error.what());
      finished({});
    }
    request.reset();
  }

  std::shared_ptr<Shared> shared;
  std::mutex mutex;
  restinio::request_handle_t request;
  const std::string route;
  const std::chrono::steady_clock::time_point started;
  bool answered = false;
  // The connection is closed after the answer (its request's body was left unread).
  bool close_connection = false;
};

void Responder::Send(Response response) const { state_->Send(std::move(response)); }

std::optional<std::string> Request::Header(std::string_view name) const {
  for (const HeaderField& header : headers) {
    if (header.name.size() == name.size() &&
        absl::EqualsIgnoreCase(absl::string_view(header.name.data(), header.name.size()),
                               absl::string_view(name.data(), name.size()))) {
      return header.value;
    }
  }
  return std::nullopt;
}

std::shared_ptr<const Request> Request::Hold() const {
  if (std::shared_ptr<const Request> shared = weak_from_this().lock()) {
    return shared;
  }
  return std::make_shared<const Request>(*this);
}

Response Response::Json(int status, std::string json) {
  Response response;
  response.status = status;
  response.headers.push_back({"Content-Type", "application/json"});
  response.body = std::move(json);
  return response;
}

namespace {

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

Response Response::Error(int status, std::string_view code, std::string_view reason) {
  std::string json = "{\"error\":" + JsonString(code);
  if (!reason.empty()) {
    json += ",\"reason\":" + JsonString(reason);
  }
  json += "}";
  return Json(status, std::move(json));
}

Response& Response::WithHeader(std::string name, std::string value) {
  headers.push_back({std::move(name), std::move(value)});
  return *this;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

struct Server::Impl {
  struct Route {
    std::vector<std::string> segments;
    std::map<std::string, Handler> by_method;
  };

  ServerOptions options;
  metrics::Registry* registry;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::vector<std::string> route_order;
  std::map<std::string, Route> routes;
  ReadinessCheck readiness;
  RefusalObserver refusal_observer;
  /// Answers `response` (an error the server gives itself) and tells the observer.
  void Refuse(Responder& responder, const restinio::request_handle_t& raw, std::string_view route,
              std::string_view path, Response response, std::string_view code,
              std::string_view reason) {
    if (refusal_observer) {
      refusal_observer(Refusal{.route = route,
                               .method = raw->header().method().c_str(),
                               .path = path,
                               .status = response.status,
                               .code = code,
                               .reason = reason});
    }
    responder.Send(std::move(response));
  }
  std::function<void()> before_shutdown;
  std::mutex readiness_mutex;  // one check at a time
  std::mutex last_readiness_mutex;
  absl::Status last_readiness = absl::UnavailableError("not checked yet");
  std::shared_ptr<ConnectionListener> connections = std::make_shared<ConnectionListener>();

  restinio::asio_ns::io_context io;
  std::optional<
      restinio::asio_ns::executor_work_guard<restinio::asio_ns::io_context::executor_type>>
      work;
  std::unique_ptr<RestServer> server;
  std::unique_ptr<restinio::asio_ns::signal_set> signals;
  std::vector<std::thread> threads;
  std::atomic<int> port{0};
  bool started = false;
  bool stopped = false;

  void Handle(const restinio::request_handle_t& request);
  void Dispatch(const std::string& pattern, const restinio::request_handle_t& request,
                std::map<std::string, std::string> params);
  void NotFound(const restinio::request_handle_t& request, std::string_view path);
  void Refused(const std::string& route, const restinio::request_handle_t& request,
               std::string_view code);
  absl::Status Shutdown();
  void StopThreads();
  Response Readiness();
};

void Server::Impl::Handle(const restinio::request_handle_t& raw) {
  std::string_view path(raw->header().path().data(), raw->header().path().size());
  auto refused = raw->header().opt_value_of(
      restinio::string_view_t(kRefusedField.data(), kRefusedField.size()));
  for (const std::string& pattern : route_order) {
    std::map<std::string, std::string> params;
    if (Match(routes.at(pattern).segments, path, &params)) {
      if (refused) {
        Refused(pattern, raw, std::string_view(refused->data(), refused->size()));
        return;
      }
      Dispatch(pattern, raw, std::move(params));
      return;
    }
  }
  if (refused) {
    Refused("unmatched", raw, std::string_view(refused->data(), refused->size()));
    return;
  }
  NotFound(raw, path);
}

// A request ended after its headers by the parser (see the top of this file): answered at once,
// whatever its route, and the connection closed, as the rest of its body was never read.
void Server::Impl::Refused(const std::string& route, const restinio::request_handle_t& raw,
                           std::string_view code) {
  auto state = Responder::State::Create(shared, raw, route);
  state->close_connection = true;
  Responder responder(state);
  const std::string path = ToString(raw->header().path());
  if (code == kExpectationFailed) {
    constexpr std::string_view kReason = "only 100-continue is supported";
    Refuse(responder, raw, route, path, Response::Error(417, kExpectationFailed, kReason),
           kExpectationFailed, kReason);
    return;
  }
  const std::string reason = absl::StrCat("the body exceeds ", options.max_body_bytes, " bytes");
  Refuse(responder, raw, route, path, Response::Error(413, kBodyTooLarge, reason), kBodyTooLarge,
         reason);
}

void Server::Impl::Dispatch(const std::string& pattern, const restinio::request_handle_t& raw,
                            std::map<std::string, std::string> params) {
  Responder responder(Responder::State::Create(shared, raw, pattern));
  if (options.max_in_flight > 0) {
    int in_flight;
    {
      std::lock_guard lock(shared->mutex);
      in_flight = shared->in_flight;
    }
    if (static_cast<size_t>(in_flight) > options.max_in_flight) {
      shared->shed->Increment();
      constexpr std::string_view kReason = "too many requests in progress; retry";
      Refuse(responder, raw, pattern, ToString(raw->header().path()),
             Response::Error(503, "overloaded", kReason)
                 .WithHeader("Retry-After", std::to_string(options.overload_retry_after_seconds)),
             "overloaded", kReason);
      return;
    }
  }
  // Shared: a handler that answers later holds it (Request::Hold) instead of copying it.
  auto held = std::make_shared<Request>();
  Request& request = *held;
  const auto& header = raw->header();
  request.method = header.method().c_str();
  request.target = header.request_target();
  request.path = ToString(header.path());
  request.query = ToString(header.query());
  for (const auto& field : header) {
    request.headers.push_back({field.name(), field.value()});
  }
  request.remote_address = raw->remote_endpoint().address().to_string();
  request.route = pattern;
  const Route& route = routes.at(pattern);
  request.params = std::move(params);
  if (raw->body().size() > options.max_body_bytes) {
    const std::string reason = absl::StrCat("the body exceeds ", options.max_body_bytes, " bytes");
    Refuse(responder, raw, pattern, request.path, Response::Error(413, kBodyTooLarge, reason),
           kBodyTooLarge, reason);
    return;
  }
  request.body = raw->body();
  auto handler = route.by_method.find(request.method);
  if (handler == route.by_method.end()) {
    std::vector<std::string> allowed;
    for (const auto& [method, unused] : route.by_method) {
      allowed.push_back(method);
    }
    Refuse(responder, raw, pattern, request.path,
           Response::Error(405, "method_not_allowed")
               .WithHeader("Allow", absl::StrJoin(allowed, ", ")),
           "method_not_allowed", "");
    return;
  }
  try {
    handler->second(request, responder);
  } catch (const std::exception& error) {
    spdlog::error("http: {} {} failed: {}", request.method, pattern, error.what());
    responder.Send(Response::Error(500, "internal"));
  }
}

void Server::Impl::NotFound(const restinio::request_handle_t& raw, std::string_view path) {
  Responder responder(Responder::State::Create(shared, raw, "unmatched"));
  // A URL configured with a trailing slash is not the route (one path, one route), but the
  // answer names the one that serves this method: the integrator reading the failed delivery
  // sees the fix. A route without parameters is named as the client wrote it; one with
  // parameters by its pattern, so that no client text is echoed.
  std::string_view trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') {
    trimmed.remove_suffix(1);
  }
  if (trimmed.size() < path.size() && trimmed != "/") {
    const std::string method = raw->header().method().c_str();
    for (const std::string& pattern : route_order) {
      const Route& route = routes.at(pattern);
      std::map<std::string, std::string> params;
      if (route.by_method.count(method) > 0 && Match(route.segments, trimmed, &params)) {
        const std::string reason =
            absl::StrCat(params.empty() ? absl::string_view(trimmed.data(), trimmed.size())
                                        : absl::string_view(pattern),
                         " is served: this path without its trailing slash");
        Refuse(responder, raw, "unmatched", path, Response::Error(404, "not_found", reason),
               "not_found", reason);
        return;
      }
    }
  }
  Refuse(responder, raw, "unmatched", path, Response::Error(404, "not_found"), "not_found", "");
}

Response Server::Impl::Readiness() {
  if (shared->draining) {
    return Response::Error(503, "not_ready", "shutting down");
  }
  absl::Status status;
  // One check at a time; a probe that arrives meanwhile gets the last answer rather than
  // tying up another event-loop thread.
  std::unique_lock lock(readiness_mutex, std::try_to_lock);
  if (lock.owns_lock()) {
    status = readiness ? readiness() : absl::OkStatus();
    std::lock_guard last(last_readiness_mutex);
    last_readiness = status;
  } else {
    std::lock_guard last(last_readiness_mutex);
    status = last_readiness;
  }
  if (!status.ok()) {
    return Response::Error(503, "not_ready", std::string(status.message()));
  }
  return Response::Json(200, "{\"status\":\"ready\"}");
}

absl::Status Server::Impl::Shutdown() {
  shared->draining = true;
  std::promise<void> closed;
  server->close_async([&] { closed.set_value(); }, [&](std::exception_ptr) { closed.set_value(); });
  closed.get_future().wait();
  std::unique_lock lock(shared->mutex);
  bool drained = shared->changed.wait_for(lock, options.shutdown_grace,
                                          [&] { return shared->in_flight == 0; });
  int left = shared->in_flight;
  lock.unlock();
  StopThreads();
  if (!drained) {
    return absl::DeadlineExceededError(
        absl::StrCat(left, " requests still in flight at the end of the shutdown grace"));
  }
  return absl::OkStatus();
}

void Server::Impl::StopThreads() {
  if (signals) {
    restinio::asio_ns::error_code ignored;
    signals->cancel(ignored);
  }
  work.reset();
  io.stop();
  for (std::thread& thread : threads) {
    thread.join();
  }
  threads.clear();
  stopped = true;
}

Server::Server(ServerOptions options, metrics::Registry* registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->registry = registry;
  Shared& shared = *impl_->shared;
  shared.requests = &registry->AddCounter("http_requests_total",
                                          "HTTP requests answered, by route pattern and status.",
                                          {"route", "code"});
  shared.durations =
      &registry->AddHistogram("http_request_duration_seconds",
                              "Time from a request fully read to its answer, by route pattern.",
                              {"route"}, metrics::DefaultLatencyBuckets());
  shared.in_flight_gauge =
      &registry->AddGauge("http_requests_in_flight", "Requests read and not answered yet.")
           .WithLabels({});
  shared.shed = &registry
                     ->AddCounter("http_requests_shed_total",
                                  "Requests answered 503 at once because max_in_flight requests "
                                  "were in progress.")
                     .WithLabels({});
  impl_->connections->open =
      &registry->AddGauge("http_connections_open", "Open client connections.").WithLabels({});
  auto peers = std::make_shared<PeerConnections>();
  peers->cap = impl_->options.max_connections_per_peer;
  peers->exempt = impl_->options.connection_cap_exempt;
  peers->refused = &registry
                        ->AddCounter("http_connections_refused_total",
                                     "Connections closed at once because their peer had "
                                     "max_connections_per_peer open already.")
                        .WithLabels({});
  impl_->connections->peers = std::move(peers);
  if (!impl_->options.operations_routes) {
    return;
  }

  Route("GET", "/healthz", [](const Request&, Responder responder) {
    responder.Send(Response::Json(200, "{\"status\":\"alive\"}"));
  });
  Route("GET", "/readyz", [impl = impl_.get()](const Request&, Responder responder) {
    responder.Send(impl->Readiness());
  });
  Route("GET", "/metrics", [registry](const Request&, Responder responder) {
    Response response;
    response.headers.push_back({"Content-Type", metrics::Registry::kContentType});
    response.body = registry->Render();
    responder.Send(std::move(response));
  });
}

Server::~Server() {
  if (impl_->started && !impl_->stopped) {
    impl_->shared->draining = true;
    impl_->StopThreads();
  }
  // Answers that arrive from now on are dropped: the connections go with the event loop.
  // The handles are released with no lock held, as releasing one may run write callbacks.
  std::vector<std::weak_ptr<Responder::State>> live;
  {
    std::lock_guard lock(impl_->shared->mutex);
    for (const auto& [pointer, state] : impl_->shared->live) {
      live.push_back(state);
    }
  }
  std::vector<restinio::request_handle_t> released;
  for (const auto& weak : live) {
    if (auto state = weak.lock()) {
      std::lock_guard state_lock(state->mutex);
      released.push_back(std::move(state->request));
      state->request.reset();
    }
  }
  released.clear();
  impl_->server.reset();
}

void Server::Route(std::string method, std::string path, Handler handler) {
  auto [route, inserted] = impl_->routes.try_emplace(path);
  if (inserted) {
    impl_->route_order.push_back(path);
    route->second.segments = Segments(path);
  }
  route->second.by_method[absl::AsciiStrToUpper(method)] = std::move(handler);
}

void Server::SetReadinessCheck(ReadinessCheck check) { impl_->readiness = std::move(check); }

void Server::SetRefusalObserver(RefusalObserver observer) {
  impl_->refusal_observer = std::move(observer);
}

void Server::SetBeforeShutdown(std::function<void()> hook) {
  impl_->before_shutdown = std::move(hook);
}

absl::Status Server::Start() {
  Impl& impl = *impl_;
  if (impl.started) {
    return absl::FailedPreconditionError("the server was started already");
  }

  const ServerOptions& options = impl.options;
  try {
    impl.server =
        std::make_unique<RestServer>(restinio::external_io_context(impl.io), [&](auto& settings) {
          settings.address(options.address)
              .port(static_cast<std::uint16_t>(options.port))
              .request_handler([&impl](const restinio::request_handle_t& request) {
                impl.Handle(request);
                return restinio::request_accepted();
              })
              // "No limit" is a large finite one: RESTinio's limiter misbehaves at SIZE_MAX
              // (the acceptor then never closed on shutdown).
              .max_parallel_connections(options.max_connections == 0 ? (1u << 20)
                                                                     : options.max_connections)
              .connection_state_listener(impl.connections)
              .ip_blocker(impl.connections->peers)
              .read_next_http_message_timelimit(options.idle_timeout)
              .handle_request_timeout(options.handler_timeout)
              .write_http_response_timelimit(std::chrono::seconds(10))
              .concurrent_accepts_count(static_cast<std::size_t>(options.threads))
              .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}
                                            .max_url_size(options.max_url_bytes)
                                            .max_field_name_size(options.max_header_name_bytes)
                                            .max_field_value_size(options.max_header_value_bytes)
                                            .max_field_count(options.max_header_count)
                                            .max_body_size(options.max_body_bytes))
              .acceptor_post_bind_hook([&impl](restinio::asio_ns::ip::tcp::acceptor& acceptor) {
                impl.port = acceptor.local_endpoint().port();
                // A child process (a hook, a test's curl) must not keep the port listening
                // after the server closed it.
                ::fcntl(acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
              });
        });
  } catch (const std::exception& error) {
    return absl::InvalidArgumentError(absl::StrCat("http server: ", error.what()));
  }

  impl.work.emplace(impl.io.get_executor());
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    impl.threads.emplace_back([&impl] { impl.io.run(); });
  }
  impl.started = true;
  std::promise<absl::Status> opened;
  impl.server->open_async([&] { opened.set_value(absl::OkStatus()); },
                          [&](std::exception_ptr error) {
                            try {
                              std::rethrow_exception(error);
                            } catch (const std::exception& e) {
                              opened.set_value(absl::UnavailableError(
                                  absl::StrCat("http server: cannot listen on ", options.address,
                                               ":", options.port, ": ", e.what())));
                            }
                          });
  absl::Status status = opened.get_future().get();
  if (!status.ok()) {
    impl.StopThreads();
    return status;
  }
  if (options.handle_signals) {
    impl.signals = std::make_unique<restinio::asio_ns::signal_set>(impl.io, SIGINT, SIGTERM);
    impl.signals->async_wait([this](const restinio::asio_ns::error_code& error, int signal) {
      if (!error) {
        spdlog::info("http: signal {} received, shutting down", signal);
        Stop();
      }
    });
  }
  spdlog::info("http: listening on {}:{}", options.address, impl.port.load());
  return absl::OkStatus();
}

int Server::port() const { return impl_->port; }

absl::Status Server::Run() {
  if (!impl_->started) {
    absl::Status status = Start();
    if (!status.ok()) {
      return status;
    }
  }
  {
    std::unique_lock lock(impl_->shared->mutex);
    impl_->shared->changed.wait(lock, [&] { return impl_->shared->stop_requested; });
  }
  if (impl_->before_shutdown) {
    impl_->before_shutdown();
  }
  return impl_->Shutdown();
}

void Server::Stop() {
  std::lock_guard lock(impl_->shared->mutex);
  impl_->shared->stop_requested = true;
  impl_->shared->changed.notify_all();
}

}  // namespace leadflow::http
