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

}  // namespace
}  // namespace leadflow::ingest
