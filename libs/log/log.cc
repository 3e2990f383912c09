#include "log/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace leadflow::log {
namespace {

// "%*": the message escaped as a JSON string body, so a quote or a newline in a message (an
// error text, a client's input) cannot break the one-object-per-line format.
void Append(spdlog::memory_buf_t& out, std::string_view text) {
  out.append(text.data(), text.data() + text.size());
}

class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    for (char c : message.payload) {
      switch (c) {
        case '"':
          Append(out, "\\\"");
          break;
        case '\\':
          Append(out, "\\\\");
          break;
        case '\n':
          Append(out, "\\n");
          break;
        case '\r':
          Append(out, "\\r");
          break;
        case '\t':
          Append(out, "\\t");
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
            Append(out, escaped);
          } else {
            out.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

}  // namespace

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

void Init(const std::string& service, const Options& options, spdlog::sink_ptr sink) {
  if (!sink) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::logger>(service, std::move(sink));
  if (options.format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","service":"%n","thread":%t,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
  logger->set_level(spdlog::level::from_str(options.level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace leadflow::log
