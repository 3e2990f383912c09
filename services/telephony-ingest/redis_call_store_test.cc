// The call store in a real Redis (the test command's, LEADFLOW_TEST_REDIS_*), each test under a
// key prefix of its own.

#include "telephony-ingest/redis_call_store.h"

#include <gtest/gtest.h>

#include "testing/testing.h"

namespace leadflow::telephony {
namespace {

// Protects: a call's update list in Redis is bounded, in one step: appends stop at the cap
// (answered "not appended", the list stays at the cap), stop once the call is settled (a
// provider replaying its callbacks grows nothing), and the list's expiry is set when it is
// created, never pushed back by later appends.
TEST(RedisCallStoreTest, AppendIsBoundedAndStopsOnceSettled) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  const std::string key = "generic:cap-1";
  const std::string list = options.key_prefix + "call:" + key + ":u";
  for (size_t i = 0; i < 4; ++i) {
    auto snapshot = store.Append(key, "update-" + std::to_string(i),
                                 std::chrono::seconds(i == 0 ? 1000 : 5000), 4);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    EXPECT_TRUE(snapshot->appended);
    EXPECT_EQ(snapshot->updates.size(), i + 1);
    EXPECT_FALSE(snapshot->settled);
  }
  auto ttl = raw.Run({"TTL", list});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 1000);
  for (int i = 0; i < 20; ++i) {
    auto full = store.Append(key, "replayed", std::chrono::seconds(5000), 4);
    ASSERT_TRUE(full.ok()) << full.status();
    EXPECT_FALSE(full->appended);
    EXPECT_EQ(full->updates.size(), 4u);
    EXPECT_EQ(full->updates.back(), "update-3");
  }
  EXPECT_EQ(raw.Run({"LLEN", list})->integer, 4);

  const std::string other = "generic:cap-2";
  const std::string other_list = options.key_prefix + "call:" + other + ":u";
  ASSERT_TRUE(store.Append(other, "ringing", std::chrono::seconds(1000), 4).ok());
  auto settled = store.Settle(other, "the-call", std::chrono::seconds(1000));
  ASSERT_TRUE(settled.ok());
  EXPECT_FALSE(settled->has_value());
  for (int i = 0; i < 10; ++i) {
    auto after = store.Append(other, "replayed", std::chrono::seconds(1000), 4);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_FALSE(after->appended);
    ASSERT_TRUE(after->settled.has_value());
    EXPECT_EQ(*after->settled, "the-call");
  }
  EXPECT_EQ(raw.Run({"LLEN", other_list})->integer, 1);
}

// Protects: the assembler over Redis at the cap: an intermediate report past it is refused
// (FailedPrecondition) and the list stays at the cap; a final report past it settles the call
// over the kept reports and itself (answered: talk time was kept), so it is not lost.
TEST(RedisCallStoreTest, AssemblerPastTheCap) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  CallAssembler::Options calls;
  calls.max_updates_per_call = 3;
  CallAssembler assembler(calls, &store);
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1700000000));
  CallUpdate update;
  update.provider = "generic";
  update.provider_call_id = "cap-3";
  update.direction = CallEvent::INBOUND;
  update.from = "+33612345678";
  update.state = State::kRinging;
  ASSERT_TRUE(assembler.Apply(update, now).ok());
  update.state = State::kAnswered;
  update.answered_at = now;
  ASSERT_TRUE(assembler.Apply(update, now).ok());
  update.answered_at.reset();
  update.state = State::kRinging;
  ASSERT_TRUE(assembler.Apply(update, now).ok());
  for (int i = 0; i < 5; ++i) {
    auto refused = assembler.Apply(update, now);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  redis::Client raw(options);
  auto lists = raw.Run({"KEYS", options.key_prefix + "call:*:u"});
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->elements.size(), 1u);
  EXPECT_EQ(raw.Run({"LLEN", lists->elements[0].text})->integer, 3);
  update.state = State::kEnded;
  update.ended_at = now + std::chrono::seconds(30);
  auto ended = assembler.Apply(update, now + std::chrono::seconds(30));
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_TRUE(ended->finished.has_value());
  EXPECT_FALSE(ended->repeated);
  EXPECT_EQ(ended->finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(ended->finished->call.duration_seconds(), 30);
}

}  // namespace
}  // namespace leadflow::telephony
