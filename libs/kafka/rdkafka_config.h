#pragma once

// Internal to libs/kafka: RAII for rd_kafka_conf_t and property setting with clear errors.

#include <librdkafka/rdkafka.h>

#include <spdlog/spdlog.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kafka/types.h"

namespace leadflow::kafka {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// librdkafka's own log lines go through the service's logger (and so its format and level).
inline void LogToSpdlog(const rd_kafka_t*, int level, const char* facility, const char* text) {
  spdlog::level::level_enum mapped = level <= 3   ? spdlog::level::err
                                     : level == 4 ? spdlog::level::warn
                                     : level <= 6 ? spdlog::level::info
                                                  : spdlog::level::debug;
  spdlog::log(mapped, "librdkafka {}: {}", facility, text);
}

inline absl::StatusOr<ConfPtr> MakeConf(const Properties& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), LogToSpdlog);
  char error[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), error, sizeof(error)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", key, ": ", error));
    }
  }
  return conf;
}

}  // namespace leadflow::kafka
