#include "webform-ingest/adapters.h"

#include <gtest/gtest.h>

#include "testing/testing.h"

namespace leadflow::webform {
namespace {

// Protects: the rate-limit counter counts per client and window in real Redis.
TEST(RedisStoreTest, CountsPerClientAndWindow) {
  redis::Client client(testing::RedisTestOptions());
  RedisStore store(&client);
  EXPECT_EQ(*store.CountRequest("1.2.3.4", 100), 1);
  EXPECT_EQ(*store.CountRequest("1.2.3.4", 100), 2);
  EXPECT_EQ(*store.CountRequest("1.2.3.4", 101), 1);
  EXPECT_EQ(*store.CountRequest("5.6.7.8", 100), 1);
}

// Protects: SET NX GET keeps the first event id for a fingerprint and hands it back.
TEST(RedisStoreTest, FirstFingerprintClaimWins) {
  redis::Client client(testing::RedisTestOptions());
  RedisStore store(&client);
  auto first = store.ClaimFingerprint("fp1", "wf:first", std::chrono::seconds(600));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());
  auto second = store.ClaimFingerprint("fp1", "wf:second", std::chrono::seconds(600));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->value_or(""), "wf:first");
}

// Protects: Redis down is Unavailable (callers degrade), quickly, not an exception or a hang.
TEST(RedisStoreTest, DownIsUnavailable) {
  redis::Options options = testing::RedisTestOptions();
  options.port = testing::FreePort();
  redis::Client client(options);
  RedisStore store(&client);
  EXPECT_EQ(store.CountRequest("1.2.3.4", 1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store.ClaimFingerprint("fp", "id", std::chrono::seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace leadflow::webform
