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
// CountRequest and claim as Claim does; over the limit the claim is reported as not made, and
// what it recorded stays (a retry of the same content finds it and goes on under the same id).
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
  // The refused request's claim stays: undoing it could undo a concurrent retry's binding.
  EXPECT_EQ(Claim(store, "k2", "wf:next")->value_or(""), "wf:limited");
}

// Protects (review of the one-step claim, finding 1): a request refused by the rate limit does
// not take back its claim. A concurrent request with the same key and content sees that claim
// as its own and is accepted; had the refused one deleted it afterwards, other content under the
// same key would later be accepted instead of 422 (and, without a key, a double submit would get
// a fresh id: a duplicate lead).
TEST(RedisStoreTest, RefusedClaimStaysForAConcurrentSameContent) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  std::promise<absl::StatusOr<Store::CountedClaim>> refused;
  std::promise<absl::StatusOr<std::optional<std::string>>> concurrent;
  // Both on the wire before either answer: the refused request's round trip, then the other's.
  store.CountAndClaim(
      "6.6.6.6", 7, /*limit=*/0, "idem", "form/k", "content-F", std::chrono::seconds(600),
      [&](absl::StatusOr<Store::CountedClaim> result) { refused.set_value(std::move(result)); });
  store.Claim("idem", "form/k", "content-F", std::chrono::seconds(600),
              [&](absl::StatusOr<std::optional<std::string>> earlier) {
                concurrent.set_value(std::move(earlier));
              });
  auto first = refused.get_future().get();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->count, 1);
  EXPECT_FALSE(first->claimed);
  auto second = concurrent.get_future().get();
  ASSERT_TRUE(second.ok()) << second.status();
  // Whichever came first, the key is bound to content F, and stays so.
  std::promise<absl::StatusOr<std::optional<std::string>>> later;
  store.Claim("idem", "form/k", "content-G", std::chrono::seconds(600),
              [&](absl::StatusOr<std::optional<std::string>> earlier) {
                later.set_value(std::move(earlier));
              });
  auto other = later.get_future().get();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->value_or("<none: the binding was deleted>"), "content-F");
}

// Protects (finding 2): a claim Redis answers with an error does not switch the rate limit off.
// The count came back, so the limit is decided on it; only the claim failed (the caller goes on
// without it, as when Claim alone fails). Redis < 7.0 answers every SET NX GET with an error; a
// value of another type under the key makes Redis 7 do the same for this key.
TEST(RedisStoreTest, ClaimErrorLeavesTheCountDeciding) {
  redis::PipelinedClient client(testing::RedisTestOptions());
  RedisStore store(&client);
  std::promise<absl::StatusOr<std::vector<redis::Reply>>> pushed;
  client.Submit({{"LPUSH", client.options().key_prefix + "fp:taken", "x"}},
                [&](absl::StatusOr<std::vector<redis::Reply>> replies) {
                  pushed.set_value(std::move(replies));
                });
  ASSERT_TRUE(pushed.get_future().get().ok());

  auto first = CountAndClaim(store, "8.8.8.8", 1, "taken", "wf:a");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->count, 1);
  EXPECT_TRUE(first->claimed);
  EXPECT_FALSE(first->claim_status.ok());
  EXPECT_TRUE(FailsOpen(first->claim_status));
  auto second = CountAndClaim(store, "8.8.8.8", 1, "taken", "wf:b");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->count, 2);
  EXPECT_FALSE(second->claimed);

  RateLimiter limiter(&store, 1);
  auto decide = [&] {
    std::promise<std::pair<RateLimiter::Decision, RateLimiter::ClaimResult>> answer;
    limiter.CheckAndClaim("7.7.7.7",
                          std::chrono::system_clock::time_point(std::chrono::seconds(6000)),
                          {"fp", "taken", "wf:c", std::chrono::seconds(60)},
                          [&](RateLimiter::Decision decision, RateLimiter::ClaimResult claim) {
                            answer.set_value({decision, std::move(claim)});
                          });
    return answer.get_future().get();
  };
  auto allowed = decide();
  EXPECT_EQ(allowed.first.verdict, RateLimiter::Verdict::kAllowed);
  EXPECT_FALSE(allowed.second.ok());  // the claim's failure, for the caller to fail open on
  EXPECT_TRUE(FailsOpen(allowed.second.status()));
  EXPECT_EQ(decide().first.verdict, RateLimiter::Verdict::kLimited);
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

  // The claim failing alone (the count came back): the limit still decides; the claim's
  // failure is handed on.
  store.next_count = 10;
  store.next_claim = absl::InternalError("redis: ERR syntax error");
  Checked claim_failed = DecideAndClaim(limiter, 6000);
  EXPECT_EQ(claim_failed.decision.verdict, RateLimiter::Verdict::kAllowed);
  EXPECT_EQ(claim_failed.claim.status().code(), absl::StatusCode::kInternal);
  store.next_count = 11;
  EXPECT_EQ(DecideAndClaim(limiter, 6000).decision.verdict, RateLimiter::Verdict::kLimited);

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
