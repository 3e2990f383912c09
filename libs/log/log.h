#pragma once

#include <spdlog/common.h>

#include <string>

#include "config/config.h"

namespace leadflow::log {

struct Options {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text (readable) or json (one object a line, for log shippers)
};

/// Reads LOG_LEVEL and LOG_FORMAT.
Options ReadOptions(config::Reader& reader);

/// Sets spdlog's default logger for a service: its name on every line, flushed on warn, to
/// `sink` (stderr when null). In json format each line is one JSON object whose "msg" is
/// escaped, whatever the message holds.
void Init(const std::string& service, const Options& options, spdlog::sink_ptr sink = nullptr);

}  // namespace leadflow::log
