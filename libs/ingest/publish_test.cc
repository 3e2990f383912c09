#include "ingest/publish.h"

#include <gtest/gtest.h>

namespace leadflow::ingest {
namespace {

std::optional<std::string> HeaderOf(const http::Response& response, const std::string& name) {
  for (const auto& header : response.headers) {
    if (header.name == name) {
      return header.value;
    }
  }
  return std::nullopt;
}

// Protects: what a client is told when Kafka did not take its event: retry later (503 with
// Retry-After) for transient and fatal errors, 500 without Retry-After for a permanent refusal.
TEST(AnswerForKafkaFailureTest, ByErrorClass) {
  kafka::DeliveryResult result;
  result.status = absl::UnavailableError("x");
  result.error_class = kafka::ErrorClass::kRetryable;
  http::Response retry = AnswerForKafkaFailure(result, 7);
  EXPECT_EQ(retry.status, 503);
  EXPECT_EQ(HeaderOf(retry, "Retry-After"), "7");
  result.error_class = kafka::ErrorClass::kFatal;
  EXPECT_EQ(AnswerForKafkaFailure(result, 7).status, 503);
  result.error_class = kafka::ErrorClass::kPermanent;
  http::Response permanent = AnswerForKafkaFailure(result, 7);
  EXPECT_EQ(permanent.status, 500);
  EXPECT_EQ(HeaderOf(permanent, "Retry-After"), std::nullopt);
}

}  // namespace
}  // namespace leadflow::ingest
