#include "log/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace leadflow::log {
namespace {

// Protects: json log lines stay valid JSON whatever the message holds (quotes, backslashes,
// newlines, control characters from client input).
TEST(LogTest, JsonLinesAreValidJson) {
  std::ostringstream out;
  Init("svc", {.level = "info", .format = "json"},
       std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::info("bad \"input\" \\ with\nnewline and \x01 control");
  spdlog::default_logger()->flush();
  auto line = nlohmann::json::parse(out.str());
  EXPECT_EQ(line["msg"], "bad \"input\" \\ with\nnewline and \x01 control");
  EXPECT_EQ(line["service"], "svc");
  EXPECT_EQ(line["level"], "info");
}

// Protects: invalid UTF-8 in a message (a client's Latin-1, a cut multi-byte sequence, an
// overlong encoding) is escaped, so the line still parses; valid UTF-8 passes unchanged.
TEST(LogTest, InvalidUtf8IsEscapedInJsonLines) {
  std::ostringstream out;
  Init("svc", {.level = "info", .format = "json"},
       std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::info("caf\xe9 \xc3 \xc0\xaf \xed\xa0\x80 ok: caf\xc3\xa9 \xf0\x9f\x93\x9e");
  spdlog::default_logger()->flush();
  auto line = nlohmann::json::parse(out.str(), nullptr, false);
  ASSERT_FALSE(line.is_discarded()) << out.str();
  EXPECT_EQ(line["msg"],
            "caf\uFFFD \uFFFD \uFFFD\uFFFD \uFFFD\uFFFD\uFFFD ok: caf\u00e9 \U0001F4DE");
}

// Protects: an unknown level or format is a configuration error naming the variable.
TEST(LogTest, BadOptionsAreRejected) {
  std::map<std::string, std::string> env = {{"LOG_LEVEL", "loud"}, {"LOG_FORMAT", "xml"}};
  config::Reader reader("svc", "test", {"LOG_"},
                        [&](const std::string& name) -> std::optional<std::string> {
                          auto it = env.find(name);
                          return it == env.end() ? std::nullopt
                                                 : std::optional<std::string>(it->second);
                        },
                        {"LOG_LEVEL", "LOG_FORMAT"});
  ReadOptions(reader);
  absl::Status status = reader.Finish();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("LOG_LEVEL"), std::string::npos);
  EXPECT_NE(status.message().find("LOG_FORMAT"), std::string::npos);
}

}  // namespace
}  // namespace leadflow::log
