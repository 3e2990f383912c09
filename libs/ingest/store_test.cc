#include "ingest/store.h"

#include <gtest/gtest.h>

#include <future>

#include "testing/testing.h"

namespace leadflow::ingest {
namespace {

// The store answers on the client's thread; these wait for the answer.
absl::StatusOr<int64_t> Count(Store& store, const std::string& client, int64_t window) {
  std::promise<absl::StatusOr<int64_t>> answer;
  store.CountRequest(client, window,
                     [&](absl::StatusOr<int64_t> count) { answer.set_value(count); });
  return answer.get_future().get();
}

absl::StatusOr<std::optional<std::string>> Claim(Store& store, const std::string& key,
                                                 const std::string& value) {
  std::promise<absl::StatusOr<std::optional<std::string>>> answer;
  store.Claim(
      "fp", key, value, std::chrono::seconds(600),
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

// Protects: SET NX GET keeps the first value for a key and hands it back.
TEST(RedisStoreTest, FirstClaimWins) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  auto first = Claim(store, "fp1", "wf:first");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->has_value());
  auto second = Claim(store, "fp1", "wf:second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->value_or(""), "wf:first");
}

absl::Status Release(Store& store, const std::string& key, const std::string& value) {
  std::promise<absl::Status> answer;
  store.Release("fp", key, value, [&](absl::Status status) { answer.set_value(status); });
  return answer.get_future().get();
}

// Protects: a claim is released only by its owner's value (a submission Kafka refused frees
// its idempotency key, but never a binding made since by another submission).
TEST(RedisStoreTest, ReleaseOnlyOwnClaim) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  ASSERT_FALSE(Claim(store, "k", "mine")->has_value());
  EXPECT_TRUE(Release(store, "k", "someone else's").ok());
  EXPECT_EQ(Claim(store, "k", "again")->value_or(""), "mine");
  EXPECT_TRUE(Release(store, "k", "mine").ok());
  EXPECT_FALSE(Claim(store, "k", "next")->has_value());
  EXPECT_TRUE(Release(store, "absent", "x").ok());
}

absl::StatusOr<Store::CountedClaim> CountAndClaim(Store& store, const std::string& client,
                                                  int64_t limit, const std::string& key,
                                                  const std::string& value) {
  std::promise<absl::StatusOr<Store::CountedClaim>> answer;
  store.CountAndClaim(
      client, 7, limit, "fp", key, value, std::chrono::seconds(600),
      [&](absl::StatusOr<Store::CountedClaim> result) { answer.set_value(std::move(result)); });
  return answer.get_future().get();
}

// Protects: the rate limit and the claim in one round trip count in the same counter as
// CountRequest and claim as Claim does; a request over the limit claims nothing (its key stays
// free for the next request).
TEST(RedisStoreTest, CountAndClaimInOneStep) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  EXPECT_EQ(*Count(store, "9.9.9.9", 7), 1);
  auto first = CountAndClaim(store, "9.9.9.9", 3, "k1", "wf:first");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->count, 2);
  EXPECT_TRUE(first->claimed);
  EXPECT_FALSE(first->earlier.has_value());
  auto again = CountAndClaim(store, "9.9.9.9", 3, "k1", "wf:second");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->count, 3);
  EXPECT_TRUE(again->claimed);
  EXPECT_EQ(again->earlier.value_or(""), "wf:first");
  auto over = CountAndClaim(store, "9.9.9.9", 3, "k2", "wf:limited");
  ASSERT_TRUE(over.ok()) << over.status();
  EXPECT_EQ(over->count, 4);
  EXPECT_FALSE(over->claimed);
  EXPECT_FALSE(over->earlier.has_value());
  // Nothing was recorded under k2 by the refused request.
  EXPECT_FALSE(Claim(store, "k2", "wf:next")->has_value());
}

// Protects: Redis down is Unavailable (callers fail open), quickly, not an exception or a hang.
TEST(RedisStoreTest, DownIsUnavailable) {
  redis::Options options = testing::RedisTestOptions();
  options.port = testing::FreePort();
  redis::PipelinedClient client(options);
  RedisStore store(&client);
  EXPECT_EQ(Count(store, "1.2.3.4", 1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(FailsOpen(absl::UnavailableError("down")));
  // Backing off after the failure: answered Unavailable without trying again.
  EXPECT_EQ(Claim(store, "fp", "id").status().code(), absl::StatusCode::kUnavailable);
}

// Protects (defect g): a full queue towards Redis is overload, reported as ResourceExhausted,
// which callers do not fail open on — and it does not start the outage back-off, so the next
// request still reaches a healthy Redis.
TEST(RedisStoreTest, FullQueueIsOverloadNotOutage) {
  redis::PipelinedClient full(testing::RedisTestOptions(), 1, /*max_pending=*/0);
  RedisStore store(&full);
  auto count = Count(store, "1.2.3.4", 1);
  EXPECT_EQ(count.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(FailsOpen(count.status()));
  EXPECT_EQ(Count(store, "1.2.3.4", 1).status().code(), absl::StatusCode::kResourceExhausted);
}

// A store whose answers the test chooses.
class FakeStore : public Store {
 public:
  absl::StatusOr<int64_t> next_count = 1;
  std::vector<std::string> counted;
  std::vector<std::string> claimed;
  absl::StatusOr<std::optional<std::string>> next_claim = std::optional<std::string>();
  void CountRequest(const std::string& client, int64_t, CountDone done) override {
    counted.push_back(client);
    done(next_count);
  }
  void Claim(const std::string&, const std::string& key, const std::string&, std::chrono::seconds,
             ClaimDone done) override {
    claimed.push_back(key);
    done(next_claim);
  }
  void Release(const std::string&, const std::string&, const std::string&,
               std::function<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
};

RateLimiter::Decision Decide(RateLimiter& limiter, int64_t unix_seconds) {
  RateLimiter::Decision decision;
  limiter.Check("1.2.3.4",
                std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)),
                [&](RateLimiter::Decision d) { decision = d; });
  return decision;
}

// Protects (defect g): the rate limit holds under load. Queue full gives kOverloaded (503), not
// kFailedOpen; only Redis failures fail open; over the limit is 429 with the seconds left in
// the minute.
TEST(RateLimiterTest, VerdictsByStoreAnswer) {
  FakeStore store;
  RateLimiter limiter(&store, 10);
  store.next_count = 10;
  EXPECT_EQ(Decide(limiter, 6000).verdict, RateLimiter::Verdict::kAllowed);
  store.next_count = 11;
  RateLimiter::Decision limited = Decide(limiter, 6015);
  EXPECT_EQ(limited.verdict, RateLimiter::Verdict::kLimited);
  EXPECT_EQ(limited.retry_after_seconds, 45);
  store.next_count = absl::ResourceExhaustedError("queue full");
  RateLimiter::Decision overloaded = Decide(limiter, 6000);
  EXPECT_EQ(overloaded.verdict, RateLimiter::Verdict::kOverloaded);
  EXPECT_GT(overloaded.retry_after_seconds, 0);
  store.next_count = absl::UnavailableError("down");
  EXPECT_EQ(Decide(limiter, 6000).verdict, RateLimiter::Verdict::kFailedOpen);

  RateLimiter off(&store, 0);
  EXPECT_EQ(Decide(off, 6000).verdict, RateLimiter::Verdict::kAllowed);
}

// Protects: the limiter counts an IPv6 client per /64, so rotating addresses inside it does not
// escape the limit.
TEST(RateLimiterTest, CountsIPv6PerSlash64) {
  FakeStore store;
  RateLimiter limiter(&store, 10);
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(6000));
  limiter.Check("2001:db8:5:6::1", now, [](RateLimiter::Decision) {});
  limiter.Check("2001:db8:5:6:ffff::2", now, [](RateLimiter::Decision) {});
  ASSERT_EQ(store.counted.size(), 2u);
  EXPECT_EQ(store.counted[0], store.counted[1]);
}

struct Checked {
  RateLimiter::Decision decision;
  RateLimiter::ClaimResult claim = absl::UnknownError("not answered");
};

Checked DecideAndClaim(RateLimiter& limiter, int64_t unix_seconds) {
  Checked checked;
  limiter.CheckAndClaim("1.2.3.4",
                        std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)),
                        {"fp", "key", "value", std::chrono::seconds(60)},
                        [&](RateLimiter::Decision decision, RateLimiter::ClaimResult claim) {
                          checked.decision = decision;
                          checked.claim = std::move(claim);
                        });
  return checked;
}

// Protects: the rate limit decided together with the claim (Store::CountAndClaim's default,
// which every Store without a one-step version gets) gives the verdicts Check gives, claims
// only what the limit lets through, and fails the claim open or overloaded with the count.
TEST(RateLimiterTest, CheckAndClaimVerdicts) {
  FakeStore store;
  RateLimiter limiter(&store, 10);
  store.next_count = 10;
  store.next_claim = std::optional<std::string>("earlier");
  Checked allowed = DecideAndClaim(limiter, 6000);
  EXPECT_EQ(allowed.decision.verdict, RateLimiter::Verdict::kAllowed);
  ASSERT_TRUE(allowed.claim.ok());
  EXPECT_EQ(allowed.claim->value_or(""), "earlier");
  EXPECT_EQ(store.claimed.size(), 1u);

  store.next_count = 11;
  Checked limited = DecideAndClaim(limiter, 6015);
  EXPECT_EQ(limited.decision.verdict, RateLimiter::Verdict::kLimited);
  EXPECT_EQ(limited.decision.retry_after_seconds, 45);
  EXPECT_FALSE(limited.claim.ok());
  EXPECT_EQ(store.claimed.size(), 1u);  // nothing claimed for a refused request

  store.next_count = absl::ResourceExhaustedError("queue full");
  Checked overloaded = DecideAndClaim(limiter, 6000);
  EXPECT_EQ(overloaded.decision.verdict, RateLimiter::Verdict::kOverloaded);
  EXPECT_FALSE(FailsOpen(overloaded.claim.status()));

  store.next_count = absl::UnavailableError("down");
  Checked open = DecideAndClaim(limiter, 6000);
  EXPECT_EQ(open.decision.verdict, RateLimiter::Verdict::kFailedOpen);
  EXPECT_TRUE(FailsOpen(open.claim.status()));

  RateLimiter off(&store, 0);
  store.counted.clear();
  store.next_claim = std::optional<std::string>();
  Checked unlimited = DecideAndClaim(off, 6000);
  EXPECT_EQ(unlimited.decision.verdict, RateLimiter::Verdict::kAllowed);
  ASSERT_TRUE(unlimited.claim.ok());
  EXPECT_TRUE(store.counted.empty());  // the limit off counts nothing
}

}  // namespace
}  // namespace leadflow::ingest
