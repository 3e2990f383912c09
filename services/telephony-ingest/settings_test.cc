#include "telephony-ingest/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "telephony-ingest/twilio.h"

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
  EXPECT_EQ(settings.kafka_linger, std::chrono::milliseconds(1));
  ASSERT_TRUE(Check({{"TELEPHONY_KAFKA_LINGER_MS", "0"}}, &settings).ok());
  EXPECT_EQ(settings.kafka_linger, std::chrono::milliseconds(0));
  EXPECT_FALSE(Check({{"TELEPHONY_KAFKA_LINGER_MS", "-1"}}).ok());
  EXPECT_FALSE(Check({{"TELEPHONY_KAFKA_LINGER_MS", "5s"}}).ok());
  EXPECT_FALSE(Check({{"TELEPHONY_KAFKA_LINGER_MS", "1001"}}).ok());
  // A call's reports are kept 24 h: a timeout past 20 h would find them gone.
  ASSERT_TRUE(Check({{"TELEPHONY_CALL_TIMEOUT_S", "72000"}}, &settings).ok());
  EXPECT_EQ(settings.service.calls.open_ttl, std::chrono::seconds(72000));
  EXPECT_FALSE(Check({{"TELEPHONY_CALL_TIMEOUT_S", "72001"}}).ok());
  // A ring group's legs are waited for two minutes by default, an hour at most.
  ASSERT_TRUE(Check({}, &settings).ok());
  EXPECT_EQ(settings.service.calls.ring_window, std::chrono::seconds(120));
  ASSERT_TRUE(Check({{"TELEPHONY_RING_WINDOW_S", "45"}}, &settings).ok());
  EXPECT_EQ(settings.service.calls.ring_window, std::chrono::seconds(45));
  EXPECT_FALSE(Check({{"TELEPHONY_RING_WINDOW_S", "0"}}).ok());
  EXPECT_FALSE(Check({{"TELEPHONY_RING_WINDOW_S", "3601"}}).ok());
}

// Protects: TELEPHONY_AMI_OUTSIDE_LINE_PREFIX: none by default (numbers as dialled); 1–4
// digits reach the AMI client; anything else stops the start (a "+" or a letter would never
// match a dialled number, and the setting would silently do nothing).
TEST(SettingsTest, OutsideLinePrefix) {
  const std::map<std::string, std::string> ami = {{"TELEPHONY_AMI_HOST", "pbx"},
                                                  {"TELEPHONY_AMI_USERNAME", "leadflow"}};
  Settings settings;
  ASSERT_TRUE(Check(ami, &settings).ok());
  EXPECT_EQ(settings.ami->outside_line_prefix, "");
  auto with = [&ami](const std::string& prefix) {
    auto env = ami;
    env["TELEPHONY_AMI_OUTSIDE_LINE_PREFIX"] = prefix;
    return env;
  };
  ASSERT_TRUE(Check(with("0"), &settings).ok());
  EXPECT_EQ(settings.ami->outside_line_prefix, "0");
  for (const char* bad : {"+", "0a", "00000", " 0"}) {
    EXPECT_THAT(std::string(Check(with(bad)).message()),
                HasSubstr("TELEPHONY_AMI_OUTSIDE_LINE_PREFIX"))
        << bad;
  }
}

// Protects: TELEPHONY_PBX_TIME_ZONE: UTC by default; an IANA name from the tz database is given
// to the generic API and the AMI client alike; an unknown name (a typo, an abbreviation) stops
// the start instead of every local time being read as UTC.
TEST(SettingsTest, PbxTimeZone) {
  Settings settings;
  ASSERT_TRUE(Check({}, &settings).ok());
  EXPECT_EQ(settings.service.pbx_time_zone.name(), "UTC");
  ASSERT_TRUE(Check({{"TELEPHONY_PBX_TIME_ZONE", "America/New_York"},
                     {"TELEPHONY_AMI_HOST", "pbx"},
                     {"TELEPHONY_AMI_USERNAME", "leadflow"}},
                    &settings)
                  .ok());
  EXPECT_EQ(settings.service.pbx_time_zone.name(), "America/New_York");
  ASSERT_TRUE(settings.ami.has_value());
  EXPECT_EQ(settings.ami->time_zone.name(), "America/New_York");
  // Read from the tz database: 2026-07-01 12:00 UTC is 08:00 in New York (EDT).
  EXPECT_EQ(settings.service.pbx_time_zone.At(absl::FromUnixSeconds(1782907200)).cs.hour(), 8);
  for (const char* unknown : {"Europe/Pariss", "CEST", "Mars/Olympus_Mons", ""}) {
    absl::Status status = Check({{"TELEPHONY_PBX_TIME_ZONE", unknown}});
    EXPECT_FALSE(status.ok()) << unknown;
    EXPECT_THAT(std::string(status.message()), HasSubstr("TELEPHONY_PBX_TIME_ZONE")) << unknown;
  }
}

// Protects: TELEPHONY_TWILIO_SIP_DOMAINS: none by default (no SIP caller is our agent); the
// account's SIP Domains, in any case and with spaces, reach the service in lower case; a value
// that is no Twilio SIP Domain (a bare name, another host, an empty item, a wildcard) or past
// kMaxTwilioSipDomains stops the start instead of making strangers' calls our agents' or
// silently matching nobody.
TEST(SettingsTest, TwilioSipDomains) {
  Settings settings;
  ASSERT_TRUE(Check({}, &settings).ok());
  EXPECT_TRUE(settings.service.twilio_sip_domains.empty());
  ASSERT_TRUE(
      Check({{"TELEPHONY_TWILIO_SIP_DOMAINS", " Acme.SIP.twilio.com, acme.sip.ie1.twilio.com "}},
            &settings)
          .ok());
  EXPECT_EQ(settings.service.twilio_sip_domains,
            (std::vector<std::string>{"acme.sip.twilio.com", "acme.sip.ie1.twilio.com"}));
  std::string many;
  for (size_t i = 0; i <= kMaxTwilioSipDomains; ++i) {
    many += "d" + std::to_string(i) + ".sip.twilio.com,";
  }
  many.pop_back();
  for (const std::string& bad :
       {std::string("acme"), std::string("acme.example.com"), std::string("sip.twilio.com"),
        std::string("*.sip.twilio.com"), std::string("acme.sip.twilio.com,"),
        std::string("-acme.sip.twilio.com"), std::string("acme.sip.a.b.twilio.com"),
        std::string(64, 'a') + ".sip.twilio.com", many}) {
    absl::Status status = Check({{"TELEPHONY_TWILIO_SIP_DOMAINS", bad}});
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr("TELEPHONY_TWILIO_SIP_DOMAINS")) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr("<name>.sip.twilio.com")) << bad;
  }
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

// Protects: TELEPHONY_MAX_LATE_RECORDINGS, the recordings of one settled call published as
// their own events: 20 by default (crm-core keeps 20 per activity), 0 (none) to 1000; anything
// else stops the start.
TEST(SettingsTest, MaxLateRecordings) {
  Settings settings;
  ASSERT_TRUE(Check({}, &settings).ok());
  EXPECT_EQ(settings.service.calls.max_late_recordings, 20u);
  ASSERT_TRUE(Check({{"TELEPHONY_MAX_LATE_RECORDINGS", "5"}}, &settings).ok());
  EXPECT_EQ(settings.service.calls.max_late_recordings, 5u);
  ASSERT_TRUE(Check({{"TELEPHONY_MAX_LATE_RECORDINGS", "0"}}, &settings).ok());
  EXPECT_EQ(settings.service.calls.max_late_recordings, 0u);
  EXPECT_FALSE(Check({{"TELEPHONY_MAX_LATE_RECORDINGS", "-1"}}).ok());
  EXPECT_FALSE(Check({{"TELEPHONY_MAX_LATE_RECORDINGS", "1001"}}).ok());
}

}  // namespace
}  // namespace leadflow::telephony
