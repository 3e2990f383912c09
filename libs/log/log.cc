#include "log/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace leadflow::log {

Options ReadOptions(config::Reader& reader) {
  Options options;
  options.level = reader.String("LOG_LEVEL", options.level, "trace, debug, info, warn or error");
  options.format = reader.String("LOG_FORMAT", options.format, "text or json");
  if (spdlog::level::from_str(options.level) == spdlog::level::off && options.level != "off") {
    reader.Fail("LOG_LEVEL", "'" + options.level + "' is not a log level");
  }
  if (options.format != "text" && options.format != "json") {
    reader.Fail("LOG_FORMAT", "'" + options.format + "' is neither text nor json");
  }
  return options;
}

void Init(const std::string& service, const Options& options) {
  auto logger = spdlog::stderr_color_mt(service);
  if (options.format == "json") {
    logger->set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","service":"%n","thread":%t,"msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  logger->set_level(spdlog::level::from_str(options.level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace leadflow::log
