#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <future>

#include "kafka/errors.h"
#include "kafka/producer.h"
#include "testing/testing.h"

namespace leadflow::kafka {
namespace {

// Protects: the codes an ingestion service meets in practice are put in the right class, so
// that a broker outage is a 503 to retry, a refused message a 500, and a fenced producer a
// restart.
TEST(ClassifyErrorTest, KnownCodesFallInTheirClass) {
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR_NO_ERROR), ErrorClass::kNone);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR__QUEUE_FULL), ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR__TRANSPORT), ErrorClass::kRetryable);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS), ErrorClass::kRetryable);
  // The local spelling of the same condition was permanent: a 500 and the event lost while a
  // replica catches up.
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR__ISR_INSUFF), ErrorClass::kRetryable);
  for (rd_kafka_resp_err_t transient :
       {RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE, RD_KAFKA_RESP_ERR__INTR,
        RD_KAFKA_RESP_ERR__OUTDATED, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
        RD_KAFKA_RESP_ERR_OPERATION_NOT_ATTEMPTED, RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED}) {
    EXPECT_EQ(ClassifyError(transient), ErrorClass::kRetryable) << rd_kafka_err2name(transient);
  }
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), ErrorClass::kPermanent);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED), ErrorClass::kPermanent);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR__FATAL), ErrorClass::kFatal);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR_PRODUCER_FENCED), ErrorClass::kFatal);
  EXPECT_EQ(ClassifyError(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH), ErrorClass::kFatal);
  // A code this librdkafka does not name is not retried forever.
  EXPECT_EQ(ClassifyError(31337), ErrorClass::kPermanent);
}

// Protects: a fatal producer error (a fenced idempotent producer) reaches the service through
// on_fatal and FatalError(), and later messages are failed as kFatal rather than as a
// retryable timeout — before, the service answered 503 forever while looking ready.
TEST(ProducerFatalTest, FatalErrorIsReportedAndClassifiesLaterMessages) {
  testing::MockKafka cluster;
  cluster.CreateTopic("fatal", 1);
  std::promise<absl::Status> fatal;
  std::atomic<bool> once{false};
  auto producer = Producer::Create({.brokers = cluster.bootstrap(),
                                    .delivery_timeout = std::chrono::milliseconds(10000),
                                    .on_fatal = [&](const absl::Status& status) {
                                      if (!once.exchange(true)) {
                                        fatal.set_value(status);
                                      }
                                    }});
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*producer)->ProduceSync("fatal", "k", "before").status.ok());
  EXPECT_TRUE((*producer)->FatalError().ok());

  (*producer)->TriggerFatalErrorForTesting("fenced for the test");
  auto reported = fatal.get_future();
  ASSERT_EQ(reported.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(reported.get().code(), absl::StatusCode::kInternal);
  EXPECT_FALSE((*producer)->FatalError().ok());

  DeliveryResult after = (*producer)->ProduceSync("fatal", "k", "after");
  EXPECT_FALSE(after.status.ok());
  EXPECT_EQ(after.error_class, ErrorClass::kFatal);
}

}  // namespace
}  // namespace leadflow::kafka
