#include "ingest/readiness.h"

#include <gtest/gtest.h>

#include <atomic>

#include "testing/testing.h"

namespace leadflow::ingest {
namespace {

// Protects: readiness follows its check from its own thread, and a reader never waits for a
// slow check (the check here blocks until released, yet Current() answers).
TEST(ReadinessTest, FollowsCheckWithoutBlockingReaders) {
  std::atomic<bool> healthy{true};
  std::mutex gate;
  Readiness readiness(
      [&] {
        std::lock_guard lock(gate);
        return healthy ? absl::OkStatus() : absl::UnavailableError("kafka unreachable");
      },
      std::chrono::milliseconds(5));
  ASSERT_TRUE(testing::WaitFor([&] { return readiness.Current().ok(); }, std::chrono::seconds(5)));
  healthy = false;
  ASSERT_TRUE(testing::WaitFor([&] { return !readiness.Current().ok(); }, std::chrono::seconds(5)));
  std::unique_lock hold(gate);  // the check is now stuck
  EXPECT_EQ(readiness.Current().code(), absl::StatusCode::kUnavailable);
}

// Protects: after a fatal error the service stays unready whatever the check says.
TEST(ReadinessTest, MarkDownIsFinal) {
  Readiness readiness([] { return absl::OkStatus(); }, std::chrono::milliseconds(5));
  EXPECT_TRUE(readiness.CheckNow().ok());
  readiness.MarkDown(absl::InternalError("producer fenced"));
  EXPECT_EQ(readiness.Current().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(readiness.CheckNow().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace leadflow::ingest
