#include "http/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <mutex>
#include <thread>

#include "testing/testing.h"

namespace leadflow::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct CurlResult {
  int status = 0;
  std::string headers;
  std::string body;
};

// The real curl binary, so the server is exercised over real HTTP/1.1.
CurlResult Curl(int port, const std::string& path, const std::string& extra = "") {
  std::string output =
      leadflow::testing::Shell("curl -s -i -H 'Expect:' --max-time 20 " + extra +
                               " 'http://127.0.0.1:" + std::to_string(port) + path + "'");
  CurlResult result;
  size_t end = output.find("\r\n\r\n");
  result.headers = output.substr(0, end);
  result.body = end == std::string::npos ? "" : output.substr(end + 4);
  if (output.rfind("HTTP/1.1 ", 0) == 0) {
    result.status = std::stoi(output.substr(9, 3));
  }
  return result;
}

// A raw TCP connection to the server, for what curl cannot do (stall, hold a connection).
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& data) { (void)!::write(fd_, data.data(), data.size()); }
  // What the server sent until it contains `until` or `timeout` passed or the connection closed.
  std::string ReadUntil(std::string_view until, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (received_.find(until) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd entry{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) <= 0) {
        break;
      }
      char buffer[4096];
      ssize_t n = ::read(fd_, buffer, sizeof(buffer));
      if (n <= 0) {
        break;
      }
      received_.append(buffer, static_cast<size_t>(n));
    }
    return received_;
  }
  // True when the server closed the connection within `timeout` (a bound, not a measure).
  bool ClosedByServer(std::chrono::milliseconds timeout) {
    pollfd entry{fd_, POLLIN, 0};
    if (::poll(&entry, 1, static_cast<int>(timeout.count())) <= 0) {
      return false;
    }
    char buffer[512];
    while (true) {
      ssize_t n = ::read(fd_, buffer, sizeof(buffer));
      if (n <= 0) {
        return true;
      }
    }
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string received_;
};

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(options, &registry_);
    for (auto& [method, path, handler] : routes_) {
      server_->Route(method, path, handler);
    }
    if (observer_) {
      server_->SetRefusalObserver(observer_);
    }
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }
  void AddRoute(std::string method, std::string path, Handler handler) {
    routes_.push_back({std::move(method), std::move(path), std::move(handler)});
  }

  metrics::Registry registry_;
  std::vector<std::tuple<std::string, std::string, Handler>> routes_;
  RefusalObserver observer_;
  std::unique_ptr<Server> server_;
};

// Protects: the probes Kubernetes relies on and the metrics endpoint Prometheus scrapes.
TEST_F(ServerTest, ProbesAndMetrics) {
  StartServer();
  bool ready = true;
  server_->SetReadinessCheck(
      [&] { return ready ? absl::OkStatus() : absl::UnavailableError("kafka unreachable"); });
  EXPECT_EQ(Curl(server_->port(), "/healthz").status, 200);
  EXPECT_EQ(Curl(server_->port(), "/readyz").status, 200);
  ready = false;
  CurlResult not_ready = Curl(server_->port(), "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_THAT(not_ready.body, HasSubstr("not_ready"));
  // The counter moves once the answer is written, which can be just after curl read it.
  CurlResult metrics;
  EXPECT_TRUE(leadflow::testing::WaitFor(
      [&] {
        metrics = Curl(server_->port(), "/metrics");
        return metrics.body.find("code=\"503\",route=\"/readyz\"") != std::string::npos;
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.headers, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics.body, HasSubstr("http_requests_total{code=\"503\",route=\"/readyz\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("http_request_duration_seconds_bucket{route=\"/healthz\""));
}

// Protects: route parameters, request fields and the handler's headers reach both sides.
TEST_F(ServerTest, RouteParametersAndRequestFields) {
  AddRoute("POST", "/v1/forms/:form_id/submissions", [](const Request& request, Responder r) {
    r.Send(Response::Json(202, "{\"form\":\"" + request.params.at("form_id") + "\",\"body\":\"" +
                                   request.body + "\",\"q\":\"" + request.query + "\",\"h\":\"" +
                                   request.Header("x-test").value_or("") + "\",\"ip\":\"" +
                                   request.remote_address + "\"}")
               .WithHeader("X-Reply", "yes"));
  });
  StartServer();
  CurlResult result = Curl(server_->port(), "/v1/forms/contact/submissions?a=1",
                           "-X POST -H 'X-Test: hello' --data-binary abc");
  EXPECT_EQ(result.status, 202);
  EXPECT_EQ(
      result.body,
      "{\"form\":\"contact\",\"body\":\"abc\",\"q\":\"a=1\",\"h\":\"hello\",\"ip\":\"127.0.0.1\"}");
  EXPECT_THAT(result.headers, HasSubstr("X-Reply: yes"));
}

// Protects: unknown paths are 404, a known path with another method is 405 with Allow.
TEST_F(ServerTest, NotFoundAndMethodNotAllowed) {
  AddRoute("POST", "/things",
           [](const Request&, Responder r) { r.Send(Response::Json(200, "{}")); });
  AddRoute("OPTIONS", "/things", [](const Request&, Responder r) { r.Send({204, {}, ""}); });
  StartServer();
  EXPECT_EQ(Curl(server_->port(), "/nothing").status, 404);
  CurlResult wrong = Curl(server_->port(), "/things", "-X DELETE");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_THAT(wrong.headers, HasSubstr("Allow: OPTIONS, POST"));
  EXPECT_EQ(Curl(server_->port(), "/things").status, 405);  // GET
}

// Protects: a webhook URL configured with a trailing slash (a PBX's or a provider's console) is
// still 404 — one path, one route — but the answer names the route that serves that method, so
// that the integrator reading the failed delivery sees the fix: a route without parameters as
// written, one with parameters by its pattern (no client text echoed); an unknown path, or
// another method, names none.
TEST_F(ServerTest, NotFoundNamesThePathWithoutItsTrailingSlash) {
  AddRoute("POST", "/v1/calls/events",
           [](const Request&, Responder r) { r.Send(Response::Json(200, "{}")); });
  AddRoute("POST", "/v1/things/:id",
           [](const Request&, Responder r) { r.Send(Response::Json(200, "{}")); });
  StartServer();
  CurlResult slash = Curl(server_->port(), "/v1/calls/events/", "-X POST");
  EXPECT_EQ(slash.status, 404);
  EXPECT_THAT(slash.body, HasSubstr("\"error\":\"not_found\""));
  EXPECT_THAT(slash.body,
              HasSubstr("/v1/calls/events is served: this path without its trailing slash"));
  EXPECT_THAT(Curl(server_->port(), "/v1/calls/events//", "-X POST").body,
              HasSubstr("/v1/calls/events is served"));
  CurlResult param = Curl(server_->port(), "/v1/things/%3Cb%3E/", "-X POST");
  EXPECT_EQ(param.status, 404);
  EXPECT_THAT(param.body, HasSubstr("/v1/things/:id is served"));
  EXPECT_THAT(param.body, Not(HasSubstr("3Cb")));
  EXPECT_THAT(Curl(server_->port(), "/v1/calls/events/").body, Not(HasSubstr("served")));  // GET
  CurlResult unknown = Curl(server_->port(), "/v1/nothing/", "-X POST");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, Not(HasSubstr("served")));
  EXPECT_EQ(Curl(server_->port(), "/", "-X POST").status, 404);
}

// Protects (defect e): bodies over the limit are answered 413 without reaching the handler,
// however far over it they are (RESTinio alone closed the connection without an answer).
TEST_F(ServerTest, BodyLimit) {
  std::atomic<int> calls{0};
  AddRoute("POST", "/in", [&](const Request&, Responder r) {
    ++calls;
    r.Send(Response::Json(200, "{}"));
  });
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  std::string at_limit(1000, 'a');
  EXPECT_EQ(Curl(server_->port(), "/in", "--data-binary " + at_limit).status, 200);
  std::string over(1001, 'a');
  CurlResult too_large = Curl(server_->port(), "/in", "--data-binary " + over);
  EXPECT_EQ(too_large.status, 413);
  EXPECT_THAT(too_large.body, HasSubstr("body_too_large"));
  // Far over the limit: still a 413 (and the connection closed), no handler call.
  std::string far_over(100000, 'a');
  CurlResult huge = Curl(server_->port(), "/in", "--data-binary " + far_over);
  EXPECT_EQ(huge.status, 413);
  EXPECT_THAT(huge.headers, HasSubstr("Connection: close"));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(Curl(server_->port(), "/healthz").status, 200);  // still serving
}

// Protects (defect e): a declared Content-Length over the limit is answered 413 as soon as the
// headers are read: the client never has to send the body.
TEST_F(ServerTest, DeclaredLengthOverLimitAnsweredBeforeBody) {
  std::atomic<int> calls{0};
  AddRoute("POST", "/in", [&](const Request&, Responder r) {
    ++calls;
    r.Send(Response::Json(200, "{}"));
  });
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  for (std::string path : {"/in", "/unknown"}) {
    RawConnection client(server_->port());
    ASSERT_TRUE(client.connected());
    client.Send("POST " + path + " HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n");
    std::string answer = client.ReadUntil("body_too_large", std::chrono::seconds(10));
    EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 413 ")) << path;
    EXPECT_THAT(answer, HasSubstr("body_too_large"));
    EXPECT_TRUE(client.ClosedByServer(std::chrono::seconds(10)));
  }
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(leadflow::testing::WaitFor(
      [&] {
        std::string text = registry_.Render();
        return text.find("http_requests_total{code=\"413\",route=\"/in\"} 1") !=
                   std::string::npos &&
               text.find("http_requests_total{code=\"413\",route=\"unmatched\"} 1") !=
                   std::string::npos;
      },
      std::chrono::seconds(10)));
}

// Protects: each answer the server gives itself (404, 405, 413 read or declared, 417) is told to
// the refusal observer with its route, method, path, status and code, so that a service logs
// and counts it with its own refusals; a request its handler answers is not.
TEST_F(ServerTest, RefusalsAreToldToTheObserver) {
  AddRoute("POST", "/in", [](const Request&, Responder r) { r.Send(Response::Json(200, "{}")); });
  std::mutex mutex;
  std::vector<std::string> told;
  observer_ = [&](const Refusal& refusal) {
    std::lock_guard lock(mutex);
    told.push_back(std::string(refusal.route) + " " + std::string(refusal.method) + " " +
                   std::string(refusal.path) + " " + std::to_string(refusal.status) + " " +
                   std::string(refusal.code));
  };
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  EXPECT_EQ(Curl(server_->port(), "/in", "--data-binary x").status, 200);
  EXPECT_EQ(Curl(server_->port(), "/nothing").status, 404);
  EXPECT_EQ(Curl(server_->port(), "/in", "-X DELETE").status, 405);
  EXPECT_EQ(Curl(server_->port(), "/in", "--data-binary " + std::string(1001, 'a')).status, 413);
  {
    RawConnection client(server_->port());
    client.Send("POST /in HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n");
    EXPECT_THAT(client.ReadUntil("body_too_large", std::chrono::seconds(10)),
                ::testing::StartsWith("HTTP/1.1 413 "));
  }
  {
    RawConnection client(server_->port());
    client.Send("POST /in HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: x\r\n\r\n");
    EXPECT_THAT(client.ReadUntil("expectation", std::chrono::seconds(10)),
                ::testing::StartsWith("HTTP/1.1 417 "));
  }
  std::lock_guard lock(mutex);
  EXPECT_THAT(told, ::testing::ElementsAre(
                        "unmatched GET /nothing 404 not_found",
                        "/in DELETE /in 405 method_not_allowed", "/in POST /in 413 body_too_large",
                        "/in POST /in 413 body_too_large", "/in POST /in 417 expectation_failed"));
}

// Protects (defect e): a chunked body is answered 413 once it passes the limit.
TEST_F(ServerTest, ChunkedBodyOverLimit) {
  std::atomic<int> calls{0};
  AddRoute("POST", "/in", [&](const Request& request, Responder r) {
    ++calls;
    r.Send(Response::Json(200, "{\"size\":" + std::to_string(request.body.size()) + "}"));
  });
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  CurlResult small = Curl(server_->port(), "/in",
                          "-H 'Transfer-Encoding: chunked' --data-binary " + std::string(900, 'a'));
  EXPECT_EQ(small.status, 200);
  EXPECT_EQ(small.body, "{\"size\":900}");
  CurlResult over = Curl(server_->port(), "/in",
                         "-H 'Transfer-Encoding: chunked' --data-binary " + std::string(5000, 'a'));
  EXPECT_EQ(over.status, 413);
  EXPECT_THAT(over.body, HasSubstr("body_too_large"));
  // A chunked body that never ends: the 413 comes without waiting for its end.
  RawConnection client(server_->port());
  client.Send("POST /in HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
              std::string(0x800, 'b') + "\r\n");
  EXPECT_THAT(client.ReadUntil("body_too_large", std::chrono::seconds(10)),
              ::testing::StartsWith("HTTP/1.1 413 "));
  EXPECT_EQ(calls.load(), 1);
}

// Protects (defect e): `Expect: 100-continue` is answered: 100 Continue, then the answer, for an
// acceptable request; the final 413 without the body for one over the limit; 417 for another
// expectation.
TEST_F(ServerTest, ExpectContinue) {
  AddRoute("POST", "/in", [&](const Request& request, Responder r) {
    r.Send(Response::Json(200, "{\"size\":" + std::to_string(request.body.size()) + "}"));
  });
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  {
    RawConnection client(server_->port());
    client.Send(
        "POST /in HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    // curl waits 1 s for it before sending anyway: this must come well before.
    EXPECT_EQ(client.ReadUntil("\r\n\r\n", std::chrono::milliseconds(800)),
              "HTTP/1.1 100 Continue\r\n\r\n");
    client.Send("hello");
    EXPECT_THAT(client.ReadUntil("{\"size\":5}", std::chrono::seconds(10)),
                HasSubstr("HTTP/1.1 200 OK"));
  }
  {
    RawConnection client(server_->port());
    client.Send(
        "POST /in HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    std::string answer = client.ReadUntil("body_too_large", std::chrono::seconds(10));
    EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 413 "));
    EXPECT_TRUE(client.ClosedByServer(std::chrono::seconds(10)));
  }
  {
    RawConnection client(server_->port());
    client.Send("POST /in HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\n");
    EXPECT_THAT(client.ReadUntil("expectation_failed", std::chrono::seconds(10)),
                ::testing::StartsWith("HTTP/1.1 417 "));
  }
  // curl itself: with a small body it gets its answer (and does not wait its second for the
  // 100); with a body over the limit it gets 413 and sends nothing.
  std::string output = leadflow::testing::Shell(
      "curl -s -o /dev/null -w '%{http_code} %{size_upload} %{time_total}' --max-time 20 "
      "-H 'Expect: 100-continue' --data-binary hello 'http://127.0.0.1:" +
      std::to_string(server_->port()) + "/in'");
  EXPECT_THAT(output, ::testing::StartsWith("200 5 ")) << output;
  EXPECT_LT(std::stod(output.substr(output.rfind(' ') + 1)), 0.9) << output;
  output = leadflow::testing::Shell(
      "curl -s -o /dev/null -w '%{http_code} %{size_upload}' --max-time 20 "
      "-H 'Expect: 100-continue' --data-binary " +
      std::string(5000, 'a') + " 'http://127.0.0.1:" + std::to_string(server_->port()) + "/in'");
  EXPECT_EQ(output, "413 0");
}

// Protects: a handler may answer later from another thread (the Kafka delivery thread).
TEST_F(ServerTest, AnswersFromAnotherThread) {
  std::mutex mutex;
  std::vector<Responder> pending;
  AddRoute("POST", "/slow", [&](const Request&, Responder r) {
    std::lock_guard lock(mutex);
    pending.push_back(r);
  });
  StartServer();
  auto answer =
      std::async(std::launch::async, [&] { return Curl(server_->port(), "/slow", "-X POST"); });
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] {
        std::lock_guard lock(mutex);
        return !pending.empty();
      },
      std::chrono::seconds(10)));
  std::thread other([&] {
    std::lock_guard lock(mutex);
    pending[0].Send(Response::Json(202, "{\"late\":true}"));
    pending[0].Send(Response::Json(500, "{}"));  // ignored: one answer per request
  });
  other.join();
  CurlResult result = answer.get();
  EXPECT_EQ(result.status, 202);
  EXPECT_EQ(result.body, "{\"late\":true}");
}

// Protects: a handler answering later holds the server's request (Request::Hold: the same
// object, alive after the handler returned, nothing copied); a request the server did not
// make (a test's) is held as a copy.
TEST_F(ServerTest, HeldRequestsOutliveTheHandler) {
  std::mutex mutex;
  std::shared_ptr<const Request> held;
  const Request* seen = nullptr;
  std::optional<Responder> responder;
  AddRoute("POST", "/held/:id", [&](const Request& request, Responder r) {
    std::lock_guard lock(mutex);
    held = request.Hold();
    seen = &request;
    responder.emplace(r);
  });
  StartServer();
  auto answer = std::async(std::launch::async, [&] {
    return Curl(server_->port(), "/held/7", "-X POST -H 'X-Kept: yes' --data-binary kept-body");
  });
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] {
        std::lock_guard lock(mutex);
        return held != nullptr;
      },
      std::chrono::seconds(10)));
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(held.get(), seen);
    EXPECT_EQ(held->body, "kept-body");
    EXPECT_EQ(held->Header("x-kept"), "yes");
    EXPECT_EQ(held->params.at("id"), "7");
    responder->Send(Response::Json(202, "{}"));
  }
  EXPECT_EQ(answer.get().status, 202);
  // The server is done with it; the holder still reads it.
  EXPECT_EQ(held->path, "/held/7");

  Request own;
  own.body = "mine";
  std::shared_ptr<const Request> copy = own.Hold();
  EXPECT_NE(copy.get(), &own);
  EXPECT_EQ(copy->body, "mine");
}

// Protects: a lost callback or a throwing handler still gives the client an answer (500).
TEST_F(ServerTest, DroppedOrThrowingHandlerAnswers500) {
  AddRoute("GET", "/drop", [](const Request&, Responder) {});
  AddRoute("GET", "/throw", [](const Request&, Responder) { throw std::runtime_error("boom"); });
  StartServer();
  EXPECT_EQ(Curl(server_->port(), "/drop").status, 500);
  EXPECT_EQ(Curl(server_->port(), "/throw").status, 500);
}

// Protects: graceful shutdown — no new connections, the request in flight still gets its
// answer, then Run() returns OK.
TEST_F(ServerTest, ShutdownFinishesRequestsInFlight) {
  std::mutex mutex;
  std::optional<Responder> pending;
  AddRoute("POST", "/slow", [&](const Request&, Responder r) {
    std::lock_guard lock(mutex);
    pending = r;
  });
  StartServer();
  int port = server_->port();
  auto run = std::async(std::launch::async, [&] { return server_->Run(); });
  auto answer = std::async(std::launch::async, [&] { return Curl(port, "/slow", "-X POST"); });
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] {
        std::lock_guard lock(mutex);
        return pending.has_value();
      },
      std::chrono::seconds(10)));
  server_->Stop();
  // The acceptor closes: new connections are refused while the old request is still pending.
  ASSERT_TRUE(leadflow::testing::WaitFor([&] { return Curl(port, "/healthz").status == 0; },
                                         std::chrono::seconds(10)));
  ASSERT_EQ(run.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  {
    std::lock_guard lock(mutex);
    pending->Send(Response::Json(202, "{}"));
  }
  EXPECT_EQ(answer.get().status, 202);
  EXPECT_TRUE(run.get().ok());
}

// Protects: shutdown is bounded — a request that never finishes does not block exit.
TEST_F(ServerTest, ShutdownGraceIsBounded) {
  std::mutex mutex;
  std::optional<Responder> pending;
  AddRoute("POST", "/never", [&](const Request&, Responder r) {
    std::lock_guard lock(mutex);
    pending = r;
  });
  ServerOptions options;
  options.shutdown_grace = std::chrono::milliseconds(200);
  StartServer(options);
  auto answer =
      std::async(std::launch::async, [&] { return Curl(server_->port(), "/never", "-X POST"); });
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] {
        std::lock_guard lock(mutex);
        return pending.has_value();
      },
      std::chrono::seconds(10)));
  server_->Stop();
  absl::Status status = server_->Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  server_.reset();  // answers after this are dropped safely
  {
    std::lock_guard lock(mutex);
    pending->Send(Response::Json(202, "{}"));
    pending.reset();
  }
  EXPECT_NE(answer.get().status, 202);
}

// Protects: a port in use is a start-up error, not a crash.
TEST_F(ServerTest, PortInUseFailsToStart) {
  StartServer();
  ServerOptions options;
  options.port = server_->port();
  Server second(options, &registry_);
  absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace leadflow::http

namespace leadflow::http {
namespace {

// Protects (defect h): a public server without operations routes does not serve /healthz,
// /readyz or /metrics (they belong to the operations port).
TEST_F(ServerTest, OperationsRoutesCanBeOff) {
  AddRoute("GET", "/v1/thing", [](const Request&, Responder r) { r.Send(Response{200, {}, ""}); });
  ServerOptions options;
  options.operations_routes = false;
  StartServer(options);
  EXPECT_EQ(Curl(server_->port(), "/v1/thing").status, 200);
  EXPECT_EQ(Curl(server_->port(), "/healthz").status, 404);
  EXPECT_EQ(Curl(server_->port(), "/readyz").status, 404);
  EXPECT_EQ(Curl(server_->port(), "/metrics").status, 404);
}

// Protects: routes match by whole segments, parameters are one non-empty segment.
TEST_F(ServerTest, SegmentRouting) {
  AddRoute("POST", "/v1/forms/:form_id/submissions", [](const Request& request, Responder r) {
    r.Send(Response{200, {}, request.params.at("form_id")});
  });
  StartServer();
  EXPECT_EQ(Curl(server_->port(), "/v1/forms/contact/submissions", "-X POST").body, "contact");
  EXPECT_EQ(Curl(server_->port(), "/v1/forms/contact/submissions?x=1", "-X POST").body, "contact");
  EXPECT_EQ(Curl(server_->port(), "/v1/forms//submissions", "-X POST").status, 404);
  EXPECT_EQ(Curl(server_->port(), "/v1/forms/a/b/submissions", "-X POST").status, 404);
  EXPECT_EQ(Curl(server_->port(), "/v1/forms/contact/submissions/x", "-X POST").status, 404);
  EXPECT_EQ(Curl(server_->port(), "/v1/forms/contact/submissions").status, 405);
}

// Protects (defect g): requests in progress are bounded; past the bound the answer is an
// immediate 503 with Retry-After, counted, and the handler never sees the request.
TEST_F(ServerTest, MaxInFlightSheds) {
  std::mutex mutex;
  std::vector<Responder> held;
  int calls = 0;
  AddRoute("POST", "/hold", [&](const Request&, Responder r) {
    std::lock_guard lock(mutex);
    ++calls;
    held.push_back(r);
  });
  ServerOptions options;
  options.max_in_flight = 1;
  options.overload_retry_after_seconds = 3;
  StartServer(options);
  auto first =
      std::async(std::launch::async, [&] { return Curl(server_->port(), "/hold", "-X POST"); });
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] {
        std::lock_guard lock(mutex);
        return held.size() == 1;
      },
      std::chrono::seconds(10)));
  CurlResult shed = Curl(server_->port(), "/hold", "-X POST");
  EXPECT_EQ(shed.status, 503);
  EXPECT_THAT(shed.headers, HasSubstr("Retry-After: 3"));
  EXPECT_THAT(shed.body, HasSubstr("overloaded"));
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(calls, 1);
    held[0].Send(Response{200, {}, ""});
  }
  EXPECT_EQ(first.get().status, 200);
  EXPECT_THAT(registry_.Render(), HasSubstr("http_requests_shed_total 1"));
}

// Protects (defect g): a connection that sends half a request is closed after the read
// timeout instead of being held for a minute; open connections are a gauge.
TEST_F(ServerTest, HalfSentRequestIsCutOff) {
  ServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(300);
  StartServer(options);
  RawConnection slow(server_->port());
  ASSERT_TRUE(slow.connected());
  slow.Send("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] { return registry_.Render().find("http_connections_open 1") != std::string::npos; },
      std::chrono::seconds(10)));
  EXPECT_TRUE(slow.ClosedByServer(std::chrono::seconds(10)));
  EXPECT_TRUE(leadflow::testing::WaitFor(
      [&] { return registry_.Render().find("http_connections_open 0") != std::string::npos; },
      std::chrono::seconds(10)))
      << registry_.Render();
}

// Protects (defect g): open connections are bounded: with the limit taken by an idle
// connection, a new client is not served until it closes (it waits in the accept queue).
TEST_F(ServerTest, ConnectionLimit) {
  AddRoute("GET", "/v1/thing", [](const Request&, Responder r) { r.Send(Response{200, {}, ""}); });
  ServerOptions options;
  options.max_connections = 1;
  StartServer(options);
  auto holder = std::make_unique<RawConnection>(server_->port());
  ASSERT_TRUE(holder->connected());
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] { return registry_.Render().find("http_connections_open 1") != std::string::npos; },
      std::chrono::seconds(10)));
  EXPECT_EQ(Curl(server_->port(), "/v1/thing", "--max-time 1").status, 0);
  holder.reset();
  EXPECT_TRUE(leadflow::testing::WaitFor(
      [&] { return Curl(server_->port(), "/v1/thing", "--max-time 5").status == 200; },
      std::chrono::seconds(20)));
}

// Protects: one client cannot take every connection. With the per-peer cap held by idle
// connections from 127.0.0.1, its next connection is closed at once and counted, while the
// global limit is far away; once one of its connections closes, it may connect again (before:
// only the global WEBFORM_MAX_CONNECTIONS, which one client could exhaust alone).
TEST_F(ServerTest, PerPeerConnectionCap) {
  AddRoute("GET", "/v1/thing", [](const Request&, Responder r) { r.Send(Response{200, {}, ""}); });
  ServerOptions options;
  options.max_connections = 100;
  options.max_connections_per_peer = 2;
  StartServer(options);
  auto first = std::make_unique<RawConnection>(server_->port());
  RawConnection second(server_->port());
  ASSERT_TRUE(first->connected() && second.connected());
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] { return registry_.Render().find("http_connections_open 2") != std::string::npos; },
      std::chrono::seconds(10)));
  RawConnection third(server_->port());
  EXPECT_TRUE(third.ClosedByServer(std::chrono::seconds(5)));
  EXPECT_THAT(registry_.Render(), HasSubstr("http_connections_refused_total 1"));
  EXPECT_EQ(Curl(server_->port(), "/v1/thing").status, 0);  // refused too
  EXPECT_FALSE(second.ClosedByServer(std::chrono::milliseconds(100)));
  first.reset();
  EXPECT_TRUE(leadflow::testing::WaitFor(
      [&] { return Curl(server_->port(), "/v1/thing", "--max-time 5").status == 200; },
      std::chrono::seconds(20)));
}

// Protects: exempt peers (trusted proxies, carrying many clients) are not capped.
TEST_F(ServerTest, PerPeerCapExemptsTrustedPeers) {
  ServerOptions options;
  options.max_connections_per_peer = 1;
  options.connection_cap_exempt = [](const std::string& peer) { return peer == "127.0.0.1"; };
  StartServer(options);
  RawConnection first(server_->port());
  RawConnection second(server_->port());
  ASSERT_TRUE(leadflow::testing::WaitFor(
      [&] { return registry_.Render().find("http_connections_open 2") != std::string::npos; },
      std::chrono::seconds(10)));
  EXPECT_FALSE(second.ClosedByServer(std::chrono::milliseconds(300)));
  EXPECT_THAT(registry_.Render(), HasSubstr("http_connections_refused_total 0"));
}

}  // namespace
}  // namespace leadflow::http
