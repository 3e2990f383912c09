#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "testing/testing.h"

namespace leadflow::kafka {
namespace {

// Protects: a produced message is acknowledged with an offset and reaches a group consumer with
// its key, value and headers intact; stored offsets are resumed from by the next member.
TEST(KafkaTest, ProduceAcknowledgedThenConsumedAndResumed) {
  testing::MockKafka cluster;
  cluster.CreateTopic("t1", 3);
  auto producer = Producer::Create({.brokers = cluster.bootstrap()});
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 10; ++i) {
    DeliveryResult result = (*producer)->ProduceSync("t1", "key" + std::to_string(i),
                                                     "value" + std::to_string(i), {{"h", "v"}});
    ASSERT_TRUE(result.status.ok()) << result.status;
    EXPECT_GE(result.offset, 0);
  }
  std::string group = testing::UniqueName("g");
  {
    auto consumer =
        Consumer::Create({.brokers = cluster.bootstrap(), .group_id = group, .topics = {"t1"}});
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    std::vector<Message> seen;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          auto batch = (*consumer)->PollBatch(100, std::chrono::milliseconds(200));
          if (seen.size() < 4) {
            for (auto& message : batch) {
              if (seen.size() < 4) {
                seen.push_back(message);
              }
            }
          }
          return seen.size() >= 4;
        },
        std::chrono::seconds(20)));
    EXPECT_EQ(seen[0].headers.size(), 1u);
    EXPECT_EQ(seen[0].headers[0].key, "h");
    EXPECT_EQ(seen[0].value.substr(0, 5), "value");
    // Only the first four are declared done.
    ASSERT_TRUE((*consumer)->StoreOffsets(seen).ok());
    ASSERT_TRUE((*consumer)->CommitSync().ok());
  }
  auto consumer =
      Consumer::Create({.brokers = cluster.bootstrap(), .group_id = group, .topics = {"t1"}});
  ASSERT_TRUE(consumer.ok());
  std::set<std::string> rest;
  testing::WaitFor(
      [&] {
        for (auto& message : (*consumer)->PollBatch(100, std::chrono::milliseconds(200))) {
          rest.insert(message.value);
        }
        return rest.size() >= 6;
      },
      std::chrono::seconds(20));
  // The stored four are not redelivered; the six others are.
  EXPECT_EQ(rest.size(), 6u);
}

// Protects (defect n): the rebalance callback works with cooperative (incremental) assignment
// too: a member of a cooperative-sticky group consumes, and when a second member joins the
// partitions are shared out incrementally, all of them assigned once, with no message lost.
// Disabled in the suite: with librdkafka 2.0.2's mock cluster, a cooperative-sticky group under
// CPU load sometimes never settles, and closing a member mid-rebalance has hung or crashed the
// test process. The eager protocol (librdkafka's default, and crm-core's) is what the suite and
// the fault tests cover. Run these by hand:
//   build/libs/kafka/kafka_test --gtest_also_run_disabled_tests --gtest_filter='*Cooperative*'
TEST(KafkaTest, DISABLED_CooperativeRebalanceAssignsIncrementally) {
  testing::MockKafka cluster;
  cluster.CreateTopic("t2", 4);
  auto producer = Producer::Create({.brokers = cluster.bootstrap()});
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*producer)
                    ->ProduceSync("t2", "key" + std::to_string(i), "v" + std::to_string(i), {})
                    .status.ok());
  }
  std::string group = testing::UniqueName("coop");
  ConsumerOptions options{.brokers = cluster.bootstrap(),
                          .group_id = group,
                          .topics = {"t2"},
                          .extra = {{"partition.assignment.strategy", "cooperative-sticky"}}};
  auto first = Consumer::Create(options);
  ASSERT_TRUE(first.ok()) << first.status();
  std::set<std::string> seen;
  auto poll = [&](Consumer& consumer) {
    auto batch = consumer.PollBatch(100, std::chrono::milliseconds(100));
    for (const Message& message : batch) {
      seen.insert(message.value);
    }
    EXPECT_TRUE(consumer.StoreOffsets(batch).ok());
  };
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        poll(**first);
        return !seen.empty();
      },
      std::chrono::seconds(20)));
  EXPECT_EQ((*first)->AssignedPartitions(), 4);
  auto second = Consumer::Create(options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        poll(**first);
        poll(**second);
        return (*second)->AssignedPartitions() > 0 &&
               (*first)->AssignedPartitions() + (*second)->AssignedPartitions() == 4 &&
               seen.size() == 20;
      },
      std::chrono::seconds(30)));
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_EQ((*first)->AssignedPartitions() + (*second)->AssignedPartitions(), 4);
}

// Protects (review finding 2): a cooperative revocation whose handler cannot finish (the
// database is down) loses nothing. The first member has fetched messages of all four partitions
// into the batch it is collecting when a second member joins and two partitions move: the
// handler is given only the moving partitions' messages, which their new owner fetches again;
// the staying partitions' messages stay in the first member's batch. Before, the whole batch was
// dropped, librdkafka fetched the staying partitions on past it, and their messages were lost.
// Disabled in the suite: with librdkafka 2.0.2's mock cluster, a cooperative-sticky group under
// CPU load sometimes never settles, and closing a member mid-rebalance has hung or crashed the
// test process. The eager protocol (librdkafka's default, and crm-core's) is what the suite and
// the fault tests cover. Run these by hand:
//   build/libs/kafka/kafka_test --gtest_also_run_disabled_tests --gtest_filter='*Cooperative*'
TEST(KafkaTest, DISABLED_CooperativeRevokeWithFailingHandlerLosesNothing) {
  testing::MockKafka cluster;
  cluster.CreateTopic("t3", 4);
  std::string group = testing::UniqueName("coop");
  ConsumerOptions options{.brokers = cluster.bootstrap(),
                          .group_id = group,
                          .topics = {"t3"},
                          .extra = {{"partition.assignment.strategy", "cooperative-sticky"},
                                    {"heartbeat.interval.ms", "250"}}};
  auto first = Consumer::Create(options);
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<Message> handed_over;
  (*first)->SetRevokeHandler([&](std::vector<Message>& in_flight) {
    handed_over.insert(handed_over.end(), in_flight.begin(), in_flight.end());  // and fails
  });
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        EXPECT_TRUE((*first)->PollBatch(100, std::chrono::milliseconds(100)).empty());
        return (*first)->AssignedPartitions() == 4;
      },
      std::chrono::seconds(20)));
  auto producer = Producer::Create({.brokers = cluster.bootstrap()});
  ASSERT_TRUE(producer.ok()) << producer.status();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*producer)
                    ->ProduceSync("t3", "key" + std::to_string(i), "v" + std::to_string(i), {})
                    .status.ok());
  }
  std::mutex mutex;
  std::set<std::string> seen;
  std::atomic<bool> done{false};
  std::set<int32_t> second_partitions;
  std::thread joiner([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the first has fetched everything
    auto second = Consumer::Create(options);
    ASSERT_TRUE(second.ok()) << second.status();
    while (!done) {
      auto batch = (*second)->PollBatch(100, std::chrono::milliseconds(100));
      std::lock_guard lock(mutex);
      for (const Message& message : batch) {
        seen.insert(message.value);
        second_partitions.insert(message.partition);
      }
      EXPECT_TRUE((*second)->StoreOffsets(batch).ok());
    }
  });
  // One long batch: the second member joins while it is being collected (the mock cluster
  // takes about ten seconds to move partitions).
  auto poll_first = [&](std::chrono::milliseconds wait) {
    auto batch = (*first)->PollBatch(1000, wait);
    std::lock_guard lock(mutex);
    for (const Message& message : batch) {
      seen.insert(message.value);
    }
    (*first)->StoreOffsets(batch).IgnoreError();
  };
  poll_first(std::chrono::seconds(20));
  EXPECT_FALSE(handed_over.empty()) << "no revocation during the batch";
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        poll_first(std::chrono::milliseconds(100));
        std::lock_guard lock(mutex);
        return seen.size() == 40;
      },
      std::chrono::seconds(30)));
  done = true;
  joiner.join();
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_EQ((*first)->AssignedPartitions(), 2);
  for (const Message& message : handed_over) {
    EXPECT_EQ(second_partitions.count(message.partition), 1u)
        << "handed over a message of partition " << message.partition << ", which stayed";
  }
}

// Protects: TakeRevoked moves out exactly the revoked partitions' messages, keeping the order
// of the rest.
TEST(KafkaTest, TakeRevokedKeepsTheStayingPartitions) {
  auto at = [](const std::string& topic, int32_t partition, int64_t offset) {
    Message message;
    message.topic = topic;
    message.partition = partition;
    message.offset = offset;
    return message;
  };
  std::vector<Message> pending = {at("a", 0, 5), at("a", 1, 7), at("b", 0, 1), at("a", 0, 6),
                                  at("a", 2, 3)};
  std::vector<Message> taken = TakeRevoked(pending, {{"a", 0}, {"a", 2}});
  ASSERT_EQ(taken.size(), 3u);
  EXPECT_EQ(taken[0].offset, 5);
  EXPECT_EQ(taken[1].offset, 6);
  EXPECT_EQ(taken[2].offset, 3);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].topic, "a");
  EXPECT_EQ(pending[0].partition, 1);
  EXPECT_EQ(pending[1].topic, "b");
}

// Protects: when no broker answers, a message fails within the delivery timeout instead of
// hanging, so an ingestion service can answer 503.
TEST(KafkaTest, UndeliverableMessageFailsInTime) {
  auto producer = Producer::Create({.brokers = "127.0.0.1:" + std::to_string(testing::FreePort()),
                                    .delivery_timeout = std::chrono::milliseconds(500)});
  ASSERT_TRUE(producer.ok());
  auto result = (*producer)->ProduceSync("t1", "k", "v");
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
}

// Protects: when the broker dies after the producer knew it, a message is still answered (failed)
// around the delivery timeout instead of waiting for librdkafka's metadata retries.
TEST(KafkaTest, BrokerGoneMidwayStillAnswersInTime) {
  auto cluster = std::make_unique<testing::MockKafka>();
  cluster->CreateTopic("t1", 1);
  auto producer = Producer::Create(
      {.brokers = cluster->bootstrap(), .delivery_timeout = std::chrono::milliseconds(500)});
  ASSERT_TRUE(producer.ok());
  // The producer must have known the broker: the first delivery can miss the short timeout on a
  // loaded machine while the connection is set up, so a few attempts (bounded) are allowed.
  bool delivered = false;
  for (int attempt = 0; attempt < 20 && !delivered; ++attempt) {
    delivered = (*producer)->ProduceSync("t1", "k", "v").status.ok();
  }
  ASSERT_TRUE(delivered);
  cluster.reset();
  auto answered = std::make_shared<std::promise<DeliveryResult>>();
  (*producer)->Produce("t2", "k", "v", {},
                       [answered](const DeliveryResult& result) { answered->set_value(result); });
  auto future = answered->get_future();
  // A liveness bound, far above the 0.7 s expected, only so that a regression fails, not hangs.
  ASSERT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(future.get().status.code(), absl::StatusCode::kUnavailable);
}

// Protects: a bad property is a clear start-up error, not a crash.
TEST(KafkaTest, BadPropertyIsInvalidArgument) {
  auto producer = Producer::Create({.brokers = "127.0.0.1:1", .extra = {{"no.such.prop", "1"}}});
  ASSERT_FALSE(producer.ok());
  EXPECT_EQ(producer.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leadflow::kafka
