#pragma once

#include <string_view>

namespace leadflow::kafka {

/// What a Kafka error code means for the request that is waiting on it.
enum class ErrorClass {
  kNone,       // not an error
  kRetryable,  // the cluster is busy, moving or unreachable: the client should try again later
  kPermanent,  // this message will never be accepted as it is (too large, not authorised…)
  kFatal,      // the producer itself is unusable (fenced, lost its sequence): restart it
};

/// The one place that decides what an `rd_kafka_resp_err_t` means (as an int, so that this
/// header stays free of librdkafka). The switch behind it lists every code with no `default`,
/// so that a code added by a librdkafka upgrade is a compiler warning, not a silent choice.
ErrorClass ClassifyError(int rd_kafka_resp_err);

std::string_view ErrorClassName(ErrorClass error_class);

}  // namespace leadflow::kafka
