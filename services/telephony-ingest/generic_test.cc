#include "telephony-ingest/generic.h"

#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "telephony-ingest/twilio.h"

namespace leadflow::telephony {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

absl::TimeZone Zone(const std::string& name) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(name, &zone)) << name << ": is tzdata installed?";
  return zone;
}

// An RFC 3339 UTC time as a time point.
Clock::time_point Utc(const std::string& text) {
  absl::Time time;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &time, &error)) << text << ": " << error;
  return Clock::time_point(seconds(absl::ToUnixSeconds(time)));
}

std::string Show(const std::optional<Clock::time_point>& time) {
  if (!time) {
    return "(none)";
  }
  return absl::FormatTime(absl::RFC3339_full, absl::FromChrono(*time), absl::UTCTimeZone());
}

// Protects: a time without an offset is the PBX's local time in TELEPHONY_PBX_TIME_ZONE, in
// winter and in summer (a call-back deadline computed from a Paris or New York PBX's "09:15"
// read as UTC would be an hour early, or five hours overdue on arrival); UTC by default; times
// with an offset or as Unix seconds are what they say whatever the zone.
TEST(ParseTimeTest, ZoneLessTimesAreThePbxsLocalTime) {
  const Clock::time_point now = Utc("2026-12-01T00:00:00Z");
  const LocalTimes utc{.now = now};
  const LocalTimes paris{.zone = Zone("Europe/Paris"), .now = now};
  const LocalTimes new_york{.zone = Zone("America/New_York"), .now = now};
  EXPECT_EQ(Show(ParseTime("2026-11-30 09:15:00", utc)), "2026-11-30T09:15:00+00:00");
  EXPECT_EQ(Show(ParseTime("2026-11-30 09:15:00", paris)), "2026-11-30T08:15:00+00:00");
  EXPECT_EQ(Show(ParseTime("2026-11-30T09:15:00", new_york)), "2026-11-30T14:15:00+00:00");
  EXPECT_EQ(Show(ParseTime("2026-07-01T09:15:00.750", paris)), "2026-07-01T07:15:00+00:00");
  EXPECT_EQ(Show(ParseTime("2026-07-01 09:15:00", new_york)), "2026-07-01T13:15:00+00:00");
  for (const LocalTimes& local : {utc, paris, new_york}) {
    EXPECT_EQ(Show(ParseTime("2026-11-30T09:15:00Z", local)), "2026-11-30T09:15:00+00:00");
    EXPECT_EQ(Show(ParseTime("2026-11-30 10:15:00+01:00", local)), "2026-11-30T09:15:00+00:00");
    EXPECT_EQ(Show(ParseTime("1796030100", local)), "2026-11-30T09:15:00+00:00");
    EXPECT_FALSE(ParseTime("30/11/2026 09:15", local));
  }
}

// Protects: the choice around daylight-saving changes (LocalTimes): a local time the clocks
// skipped is read with the offset before the change; one the clocks repeated is the later
// instant once that is past (within the allowed skew), the earlier one before.
TEST(ParseTimeTest, DaylightSavingGapsAndOverlaps) {
  const absl::TimeZone paris = Zone("Europe/Paris");
  // 2026-03-29: 02:00 CET → 03:00 CEST; 02:30 does not exist.
  EXPECT_EQ(
      Show(ParseTime("2026-03-29 02:30:00", {.zone = paris, .now = Utc("2026-03-29T02:00:00Z")})),
      "2026-03-29T01:30:00+00:00");
  EXPECT_EQ(
      Show(ParseTime("2026-03-29 03:30:00", {.zone = paris, .now = Utc("2026-03-29T02:00:00Z")})),
      "2026-03-29T01:30:00+00:00");
  // 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens at 00:30Z and again at 01:30Z.
  const std::string repeated = "2026-10-25 02:30:00";
  const std::pair<const char*, const char*> cases[] = {
      {"2026-10-25T00:31:00Z", "2026-10-25T00:30:00+00:00"},  // during the first 02:30
      {"2026-10-25T01:20:00Z", "2026-10-25T00:30:00+00:00"},  // the second is 10 min ahead
      {"2026-10-25T01:26:00Z", "2026-10-25T01:30:00+00:00"},  // within the skew of the second
      {"2026-10-25T01:31:00Z", "2026-10-25T01:30:00+00:00"},  // during the second 02:30
      {"2026-10-25T09:00:00Z", "2026-10-25T01:30:00+00:00"},  // reported late: the later
  };
  for (const auto& [now, expected] : cases) {
    EXPECT_EQ(Show(ParseTime(repeated, {.zone = paris, .now = Utc(now)})), expected)
        << "received at " << now;
  }
  // Either side of the repeated hour: one reading only.
  EXPECT_EQ(
      Show(ParseTime("2026-10-25 01:59:59", {.zone = paris, .now = Utc("2026-10-25T09:00:00Z")})),
      "2026-10-24T23:59:59+00:00");
  EXPECT_EQ(
      Show(ParseTime("2026-10-25 03:00:00", {.zone = paris, .now = Utc("2026-10-25T00:00:00Z")})),
      "2026-10-25T02:00:00+00:00");
}

// Protects: the generic API reads its zone-less times with the PBX's zone: the missed call's
// ended_at (the call-back deadline counts from it) is the instant the PBX meant.
TEST(ParseGenericEventTest, TimesWithoutZoneReadInThePbxsZone) {
  const std::string body =
      R"({"call_id":"z-1","direction":"inbound","from":"+33612345678","state":"missed",)"
      R"("started_at":"2026-11-30 09:14:40","ended_at":"2026-11-30T09:15:00",)"
      R"("answered_at":"2026-11-30T09:14:50-05:00"})";
  const LocalTimes new_york{.zone = Zone("America/New_York"), .now = Utc("2026-11-30T14:16:00Z")};
  GenericParse parse = ParseGenericEvent(body, new_york);
  ASSERT_EQ(parse.outcome, GenericParse::Outcome::kOk);
  EXPECT_TRUE(parse.dropped.empty());
  EXPECT_EQ(Show(parse.update.started_at), "2026-11-30T14:14:40+00:00");
  EXPECT_EQ(Show(parse.update.answered_at), "2026-11-30T14:14:50+00:00");
  EXPECT_EQ(Show(parse.update.ended_at), "2026-11-30T14:15:00+00:00");
  // Read as UTC (the default), the local end falls before the answer given with its offset:
  // dropped as contradictory, the deadline then counted from the start, five hours early.
  GenericParse as_utc = ParseGenericEvent(body, {.now = Utc("2026-11-30T14:16:00Z")});
  EXPECT_EQ(Show(as_utc.update.started_at), "2026-11-30T09:14:40+00:00");
  EXPECT_TRUE(as_utc.dropped.count("ended_at"));
}

// Protects: a Unix time past what the clock holds (nanoseconds end in April 2262) is dropped
// like an unreadable one, the call kept; before, 17644905151 seconds (found by the fuzz target)
// overflowed the conversion (undefined behaviour; a wrapped time in practice). The last
// seconds the clock holds are still read.
TEST(ParseGenericEventTest, TimesPastTheClocksRangeAreDropped) {
  for (const std::string time :
       {"17644905151", "17644905151000", "1e300", "\"9999-12-31T23:59:59Z\"",
        "\"1011-11-14T22:13:20Z\"", "\"1969-12-31T23:59:59Z\"", "\"2300-01-01 10:00:00\""}) {
    GenericParse parse = ParseGenericEvent(
        R"({"call_id":"far-1","direction":"inbound","state":"ended","answered_at":)" + time + "}",
        LocalTimes{});
    ASSERT_EQ(parse.outcome, GenericParse::Outcome::kOk) << time;
    EXPECT_FALSE(parse.update.answered_at.has_value()) << time;
    EXPECT_TRUE(parse.dropped.count("answered_at")) << time;
  }
  // Twilio's RFC 2822 Timestamp alike (year 1011 saturated absl's conversion, and subtracting
  // the call's duration from it overflowed, found by the fuzz target).
  EXPECT_FALSE(ParseRfc2822("Tue, 14 Nov 1011 22:13:20 +0000").has_value());
  EXPECT_FALSE(ParseRfc2822("Fri, 31 Dec 9999 22:13:20 +0000").has_value());
  EXPECT_TRUE(ParseRfc2822("Tue, 14 Nov 2023 22:13:20 +0000").has_value());
  GenericParse late = ParseGenericEvent(
      R"({"call_id":"far-2","direction":"inbound","state":"ended","answered_at":9000000000})",
      LocalTimes{});
  ASSERT_TRUE(late.update.answered_at.has_value());
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::seconds>(late.update.answered_at->time_since_epoch())
          .count(),
      9000000000);
}

// Protects: a refused text says what is accepted: a NUL ("call_id":"a\u0000b", valid UTF-8 in
// JSON's escape) is named as such, not called "not UTF-8" (the 422 told the sender its text
// was not UTF-8 when it was).
TEST(ParseGenericEventTest, NulIsNamedNotCalledInvalidUtf8) {
  GenericParse nul = ParseGenericEvent(
      R"({"call_id":"a\u0000b","direction":"inbound","state":"missed"})", LocalTimes{});
  ASSERT_EQ(nul.outcome, GenericParse::Outcome::kInvalid);
  EXPECT_EQ(nul.errors["call_id"], "must be UTF-8 text without NUL characters");
  EXPECT_EQ(TextProblem(std::string("\xff", 1), 16), "must be UTF-8 text");
  EXPECT_EQ(TextProblem("ok", 16), std::nullopt);
}

// Protects: a report with bytes that are not UTF-8 — an operator or line name in Latin-1, as a PBX
// configured in ISO-8859-1 writes "Hélène" — keeps its call: each such field is dropped and
// named, like any other unreadable secondary field, where the whole body was refused 400
// malformed_json, which a PBX does not retry (the call was recorded nowhere). Such bytes in a
// member nobody reads change nothing; in a required field they refuse the report by name (422);
// a body that is not JSON stays 400; a U+FFFD the sender wrote in valid UTF-8 is kept.
TEST(ParseGenericEventTest, BytesThatAreNotUtf8DropTheirFieldNotTheCall) {
  GenericParse latin1 = ParseGenericEvent(
      "{\"call_id\":\"l1-1\",\"direction\":\"inbound\",\"state\":\"missed\","
      "\"from\":\"+33612345678\",\"operator\":\"H\xe9l\xe8ne\",\"line\":\"Soci\xe9t\xe9\","
      "\"note\":\"\xff\xfe\",\"\xe9tat\":1}",
      LocalTimes{});
  ASSERT_EQ(latin1.outcome, GenericParse::Outcome::kOk) << latin1.reason;
  EXPECT_EQ(latin1.update.provider_call_id, "l1-1");
  EXPECT_EQ(latin1.update.state, State::kMissed);
  EXPECT_EQ(latin1.update.from, "+33612345678");
  EXPECT_EQ(latin1.update.operator_name, "");
  EXPECT_EQ(latin1.update.line, "");
  EXPECT_EQ(latin1.dropped,
            (std::map<std::string, std::string>{{"line", "must be UTF-8 text"},
                                                {"operator", "must be UTF-8 text"}}));

  GenericParse required = ParseGenericEvent(
      "{\"call_id\":\"appel-\xe9\",\"direction\":\"inbound\",\"state\":\"missed\"}", LocalTimes{});
  ASSERT_EQ(required.outcome, GenericParse::Outcome::kInvalid);
  EXPECT_EQ(required.errors["call_id"], "must be UTF-8 text");

  GenericParse not_json = ParseGenericEvent("{\"call_id\":\xe9", LocalTimes{});
  EXPECT_EQ(not_json.outcome, GenericParse::Outcome::kMalformed);
  GenericParse not_object = ParseGenericEvent("[\"\xe9\"]", LocalTimes{});
  EXPECT_EQ(not_object.outcome, GenericParse::Outcome::kMalformed);

  GenericParse written = ParseGenericEvent(
      "{\"call_id\":\"l1-2\",\"direction\":\"inbound\",\"state\":\"missed\","
      "\"operator\":\"Ann \xef\xbf\xbd\"}",
      LocalTimes{});
  ASSERT_EQ(written.outcome, GenericParse::Outcome::kOk);
  EXPECT_EQ(written.update.operator_name, "Ann \xef\xbf\xbd");
  EXPECT_TRUE(written.dropped.empty());
}

// Protects: the enumerated values are read in any case and without the spaces or line end a
// PBX's template leaves around them ("missed\n" was refused 422, which the PBX does not retry:
// the call was lost); only spaces stay "required".
TEST(ParseGenericEventTest, EnumeratedValuesWithoutSurroundingSpaces) {
  GenericParse spaced = ParseGenericEvent(
      R"({"call_id":"sp-1","direction":" Inbound ","state":"missed\n"})", LocalTimes{});
  ASSERT_EQ(spaced.outcome, GenericParse::Outcome::kOk) << spaced.errors.size();
  EXPECT_EQ(spaced.update.direction, CallEvent::INBOUND);
  EXPECT_EQ(spaced.update.state, State::kMissed);
  GenericParse blank =
      ParseGenericEvent(R"({"call_id":"sp-2","direction":"inbound","state":" \t"})", LocalTimes{});
  ASSERT_EQ(blank.outcome, GenericParse::Outcome::kInvalid);
  EXPECT_EQ(blank.errors["state"], "required");
  GenericParse inner = ParseGenericEvent(
      R"({"call_id":"sp-3","direction":"in bound","state":"missed"})", LocalTimes{});
  ASSERT_EQ(inner.outcome, GenericParse::Outcome::kInvalid);
  EXPECT_EQ(inner.errors["direction"], "must be inbound or outbound");
}

// Protects: a caller id without '+' in another country's international form (SIP trunks,
// Asterisk's CallerIDNum) is that country's number, not an unidentified call; a national
// number stays national; the same rule for the generic API's counterpart.
TEST(CallerPhoneTest, ForeignNumbersWithoutPlus) {
  const std::pair<const char*, const char*> cases[] = {
      {"447911123456", "+447911123456"},
      {"12125551234", "+12125551234"},
      {"0044 7911 123457", "+447911123457"},
      {"33612345601", "+33612345601"},
      {"sip:447911123456@trunk.example.com", "+447911123456"},
      {"687732772", "+33687732772"},  // French, though +687 732772 is valid too
  };
  for (const auto& [number, e164] : cases) {
    EXPECT_EQ(CallerPhone(number, "FR").value_or("(none)"), e164) << number;
  }
  EXPECT_FALSE(CallerPhone("3010", "FR"));
  GenericParse parse = ParseGenericEvent(
      R"({"call_id":"uk-1","direction":"inbound","from":"447911123456","state":"missed"})", {});
  ASSERT_EQ(parse.outcome, GenericParse::Outcome::kOk);
  EXPECT_EQ(parse.update.from, "447911123456");  // kept as given
  // The event's identity, read when it is built.
  GenericParse ended = ParseGenericEvent(
      R"({"call_id":"uk-2","direction":"inbound","from":"447911123456","state":"ended",)"
      R"("duration":42})",
      {});
  ASSERT_EQ(ended.outcome, GenericParse::Outcome::kOk);
  CallAssembler calls(CallAssembler::Options{});
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1700000000));
  auto result = calls.Apply(ended.update, now);
  ASSERT_TRUE(result.ok() && result->finished) << result.status();
  auto built = BuildEvent(*result->finished, "FR", now, std::nullopt);
  ASSERT_EQ(built.event.identities_size(), 1);
  EXPECT_EQ(built.event.identities(0).value(), "+447911123456");
}

}  // namespace
}  // namespace leadflow::telephony
