#pragma once

#include <string>

#include "config/config.h"

namespace leadflow::log {

struct Options {
  std::string level = "info";  // trace, debug, info, warn, error
  std::string format = "text";  // text (readable) or json (one object a line, for log shippers)
};

/// Reads LOG_LEVEL and LOG_FORMAT.
Options ReadOptions(config::Reader& reader);

/// Sets spdlog's default logger for a service: its name on every line, stderr, flushed on warn.
void Init(const std::string& service, const Options& options);

}  // namespace leadflow::log
