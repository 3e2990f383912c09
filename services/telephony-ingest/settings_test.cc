#include "telephony-ingest/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace leadflow::telephony {
namespace {

using ::testing::HasSubstr;

absl::Status Check(std::map<std::string, std::string> env, Settings* out = nullptr) {
  env.try_emplace("TELEPHONY_KAFKA_BROKERS", "127.0.0.1:9092");
  std::vector<std::string> names;
  for (const auto& [name, value] : env) names.push_back(name);
  config::Reader reader(
      "telephony-ingest", "test", {"TELEPHONY_"},
      [env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      },
      names);
  Settings settings = ReadSettings(reader);
  if (out) *out = settings;
  return reader.Finish();
}

// Protects: the defaults (ports 8083/9083, inputs off until configured) and the settings that
// cannot go alone: a Twilio token without the public URL it is checked against, an AMI host
// without a user, a short webhook secret, an unknown TELEPHONY_ variable (a typo).
TEST(SettingsTest, DefaultsAndConflicts) {
  Settings settings;
  ASSERT_TRUE(Check({}, &settings).ok());
  EXPECT_EQ(settings.http.port, 8083);
  EXPECT_EQ(settings.ops.port, 9083);
  EXPECT_TRUE(settings.service.webhook_secret.empty());
  EXPECT_FALSE(settings.ami.has_value());
  EXPECT_THAT(std::string(Check({{"TELEPHONY_TWILIO_AUTH_TOKEN", "t"}}).message()),
              HasSubstr("TELEPHONY_TWILIO_PUBLIC_URL"));
  EXPECT_TRUE(Check({{"TELEPHONY_TWILIO_AUTH_TOKEN", "t"},
                     {"TELEPHONY_TWILIO_PUBLIC_URL", "https://calls.example.com"}})
                  .ok());
  EXPECT_THAT(std::string(Check({{"TELEPHONY_AMI_HOST", "pbx"}}).message()),
              HasSubstr("TELEPHONY_AMI_USERNAME"));
  ASSERT_TRUE(
      Check({{"TELEPHONY_AMI_HOST", "pbx"}, {"TELEPHONY_AMI_USERNAME", "leadflow"}}, &settings)
          .ok());
  ASSERT_TRUE(settings.ami.has_value());
  EXPECT_EQ(settings.ami->port, 5038);
  EXPECT_FALSE(Check({{"TELEPHONY_WEBHOOK_SECRET", "short"}}).ok());
  EXPECT_FALSE(Check({{"TELEPHONY_WEBHOOK_SECRT", "0123456789abcdef"}}).ok());
  EXPECT_FALSE(Check({{"TELEPHONY_KAFKA_BROKERS", ""}}).ok());
}

// Protects: a parked report is answered by the service, never cut by the HTTP server's own
// handler timeout (the trial's empty reply after 8 s): the handler timeout exceeds the longest
// a parked request may wait (its bound, one poll, its own publication), for the defaults and
// for long settle windows and delivery timeouts; the default settle window leaves a report
// answered well within a 5 s webhook timeout on a healthy broker.
TEST(SettingsTest, ParkedRequestsAnsweredBeforeTheServerTimesOut) {
  for (auto env : std::vector<std::map<std::string, std::string>>{
           {},
           {{"TELEPHONY_SETTLE_MS", "5000"}},
           {{"TELEPHONY_SETTLE_MS", "60000"}, {"TELEPHONY_DELIVERY_TIMEOUT_MS", "10000"}},
           {{"TELEPHONY_PARK_POLL_MS", "1000"}}}) {
    Settings settings;
    ASSERT_TRUE(Check(env, &settings).ok());
    EXPECT_GT(settings.http.handler_timeout,
              settings.service.parked_timeout + settings.park_poll + settings.delivery_timeout);
  }
  Settings defaults;
  ASSERT_TRUE(Check({}, &defaults).ok());
  EXPECT_EQ(defaults.service.calls.settle_window, std::chrono::milliseconds(2000));
}

}  // namespace
}  // namespace leadflow::telephony
