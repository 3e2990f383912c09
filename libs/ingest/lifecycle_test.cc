#include "ingest/lifecycle.h"

#include <gtest/gtest.h>

#include <future>

#include "testing/testing.h"

namespace leadflow::ingest {
namespace {

struct Parts {
  testing::MockKafka cluster;
  metrics::Registry registry;
  metrics::Registry ops_registry;
  std::unique_ptr<kafka::Producer> producer;
  std::unique_ptr<http::Server> public_server;
  std::unique_ptr<http::Server> ops_server;
  std::unique_ptr<Readiness> readiness;
  std::vector<std::string> order;  // what happened, in order

  Parts() {
    cluster.CreateTopic("t", 1);
    producer = *kafka::Producer::Create({.brokers = cluster.bootstrap()});
    http::ServerOptions public_options;
    public_options.operations_routes = false;
    public_server = std::make_unique<http::Server>(public_options, &registry);
    ops_server = std::make_unique<http::Server>(http::ServerOptions{}, &ops_registry);
    readiness =
        std::make_unique<Readiness>([] { return absl::OkStatus(); }, std::chrono::milliseconds(10));
    ops_server->SetReadinessCheck([this] { return readiness->Current(); });
  }
  Lifecycle::Parts Wiring() {
    return {.public_server = public_server.get(),
            .ops_server = ops_server.get(),
            .readiness = readiness.get(),
            .producer = producer.get(),
            .flush_timeout = std::chrono::milliseconds(2000),
            .before_flush = [this] { order.push_back("before_flush"); }};
  }
};

// Protects: a fatal error (e.g. a fenced producer) turns readiness false for good, stops the
// service in the usual order and makes Run() return 1, so that the process exits non-zero and
// the orchestrator restarts it.
TEST(LifecycleTest, FatalStopsWithExitCodeOne) {
  Parts parts;
  Lifecycle lifecycle(parts.Wiring());
  auto run = std::async(std::launch::async, [&] { return lifecycle.Run(); });
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.public_server->port() > 0; }, std::chrono::seconds(10)));
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.readiness->Current().ok(); }, std::chrono::seconds(10)));
  lifecycle.Fatal(absl::InternalError("producer fenced"));
  EXPECT_EQ(run.get(), 1);
  EXPECT_EQ(parts.readiness->Current().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(parts.order, std::vector<std::string>{"before_flush"});
}

// Protects: a clean stop returns 0 and leaves the service unready ("shutting down").
TEST(LifecycleTest, CleanStopReturnsZero) {
  Parts parts;
  Lifecycle lifecycle(parts.Wiring());
  auto run = std::async(std::launch::async, [&] { return lifecycle.Run(); });
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.public_server->port() > 0; }, std::chrono::seconds(10)));
  parts.public_server->Stop();
  EXPECT_EQ(run.get(), 0);
  EXPECT_FALSE(parts.readiness->Current().ok());
  EXPECT_EQ(parts.order, std::vector<std::string>{"before_flush"});
}

// The HTTP status curl got for `method path` on 127.0.0.1:port (0: no answer).
int CurlStatus(int port, const std::string& method, const std::string& path) {
  std::string code =
      testing::Shell("curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X " + method +
                     " 'http://127.0.0.1:" + std::to_string(port) + path + "'");
  return std::atoi(code.c_str());
}

// Protects: on SIGTERM readiness turns false BEFORE the public server drains, so /readyz says
// 503 during the whole drain (up to the shutdown grace) and load balancers stop sending
// (before: it stayed 200 until the drain was over).
TEST(LifecycleTest, NotReadyWhileDraining) {
  Parts parts;
  std::promise<http::Responder> held;
  parts.public_server->Route("POST", "/slow", [&](const http::Request&, http::Responder responder) {
    held.set_value(responder);
  });
  Lifecycle lifecycle(parts.Wiring());
  auto run = std::async(std::launch::async, [&] { return lifecycle.Run(); });
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.public_server->port() > 0; }, std::chrono::seconds(10)));
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.readiness->Current().ok(); }, std::chrono::seconds(10)));
  int port = parts.public_server->port();
  auto slow = std::async(std::launch::async, [&] { return CurlStatus(port, "POST", "/slow"); });
  auto held_future = held.get_future();
  ASSERT_EQ(held_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  http::Responder responder = held_future.get();

  parts.public_server->Stop();  // as SIGTERM does; a request is in flight, so it drains
  EXPECT_TRUE(
      testing::WaitFor([&] { return !parts.readiness->Current().ok(); }, std::chrono::seconds(3)));
  EXPECT_EQ(CurlStatus(parts.ops_server->port(), "GET", "/readyz"), 503);

  responder.Send(http::Response::Json(200, "{}"));
  EXPECT_EQ(slow.get(), 200);  // what was in flight is answered
  EXPECT_EQ(run.get(), 0);
}

// Protects: with an unready delay the public server goes on serving for that long after
// readiness turned false, so that a load balancer polling /readyz stops sending before
// connections are refused.
TEST(LifecycleTest, UnreadyDelayKeepsServing) {
  Parts parts;
  parts.public_server->Route("GET", "/ping", [](const http::Request&, http::Responder responder) {
    responder.Send(http::Response::Json(200, "{}"));
  });
  Lifecycle::Parts wiring = parts.Wiring();
  wiring.unready_delay = std::chrono::milliseconds(3000);
  Lifecycle lifecycle(wiring);
  auto run = std::async(std::launch::async, [&] { return lifecycle.Run(); });
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.public_server->port() > 0; }, std::chrono::seconds(10)));
  ASSERT_TRUE(
      testing::WaitFor([&] { return parts.readiness->Current().ok(); }, std::chrono::seconds(10)));
  parts.public_server->Stop();
  ASSERT_TRUE(
      testing::WaitFor([&] { return !parts.readiness->Current().ok(); }, std::chrono::seconds(3)));
  EXPECT_EQ(CurlStatus(parts.public_server->port(), "GET", "/ping"), 200);
  EXPECT_EQ(run.get(), 0);
}

}  // namespace
}  // namespace leadflow::ingest
