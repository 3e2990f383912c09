#include "webform-ingest/adapters.h"

#include <gtest/gtest.h>

#include <future>

#include "testing/testing.h"

namespace leadflow::webform {
namespace {

// The store answers on the client's thread; these wait for the answer.
absl::StatusOr<int64_t> Count(RedisStore& store, const std::string& client, int64_t window) {
  std::promise<absl::StatusOr<int64_t>> answer;
  store.CountRequest(client, window,
                     [&](absl::StatusOr<int64_t> count) { answer.set_value(count); });
  return answer.get_future().get();
}

absl::StatusOr<std::optional<std::string>> Claim(RedisStore& store, const std::string& fingerprint,
                                                 const std::string& event_id) {
  std::promise<absl::StatusOr<std::optional<std::string>>> answer;
  store.ClaimFingerprint(
      fingerprint, event_id, std::chrono::seconds(600),
      [&](absl::StatusOr<std::optional<std::string>> earlier) { answer.set_value(earlier); });
  return answer.get_future().get();
}

// Protects: the rate-limit counter counts per client and window in real Redis.
TEST(RedisStoreTest, CountsPerClientAndWindow) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  EXPECT_EQ(*Count(store, "1.2.3.4", 100), 1);
  EXPECT_EQ(*Count(store, "1.2.3.4", 100), 2);
  EXPECT_EQ(*Count(store, "1.2.3.4", 101), 1);
  EXPECT_EQ(*Count(store, "5.6.7.8", 100), 1);
}

// Protects: SET NX GET keeps the first event id for a fingerprint and hands it back.
TEST(RedisStoreTest, FirstFingerprintClaimWins) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  auto first = Claim(store, "fp1", "wf:first");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());
  auto second = Claim(store, "fp1", "wf:second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->value_or(""), "wf:first");
}

// Protects: Redis down is Unavailable (callers degrade), quickly, not an exception or a hang.
TEST(RedisStoreTest, DownIsUnavailable) {
  redis::Options options = testing::RedisTestOptions();
  options.port = testing::FreePort();
  redis::PipelinedClient client(options);
  RedisStore store(&client);
  EXPECT_EQ(Count(store, "1.2.3.4", 1).status().code(), absl::StatusCode::kUnavailable);
  // Backing off after the failure: answered Unavailable without trying again.
  EXPECT_EQ(Claim(store, "fp", "id").status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace leadflow::webform
