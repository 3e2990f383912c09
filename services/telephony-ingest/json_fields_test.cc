#include "telephony-ingest/json_fields.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {
namespace {

constexpr std::string_view kNames[] = {"call_id", "from", "ended_at", "duration", "state"};
using Fields = std::array<JsonField, std::size(kNames)>;

std::string Describe(const Fields& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    out += std::string(kNames[i]) + "=" + std::to_string(static_cast<int>(fields[i].kind)) + ":" +
           absl::CHexEscape(fields[i].text) + ":" + std::to_string(fields[i].number) + " ";
  }
  return out;
}

// Whenever the fast reader answers, it answers what the reference does; where it does not, the
// reference decides (and the caller asks it). Returns whether the fast reader answered.
bool ExpectSameAsReference(const std::string& text) {
  Fields fast;
  Fields reference;
  bool not_json = false;
  const bool reference_read = ReadJsonFieldsReference(text, kNames, reference, &not_json);
  if (!ReadJsonFields(text, kNames, fast)) {
    return false;
  }
  EXPECT_TRUE(reference_read) << "the fast reader took what nlohmann refuses: "
                              << absl::CHexEscape(text);
  if (reference_read) {
    EXPECT_EQ(Describe(fast), Describe(reference)) << absl::CHexEscape(text);
  }
  return true;
}

// Protects: a report or a stored call means the same whichever reader read it (the fast one
// falls back to nlohmann whenever it could differ): duplicate names (the last one stands),
// numbers at and past the 64-bit limits, negative zero, escapes, invalid UTF-8 and surrogates,
// a BOM, trailing text, non-objects.
TEST(JsonFieldsTest, HostileTextsReadAsTheReferenceReadsThem) {
  const std::vector<std::string> texts = {
      R"({"call_id":"a","from":"+33612345678","ended_at":1764500000,"duration":42})",
      R"({"from":"first","from":"second"})",
      R"({"from":"first","from":33612345678})",
      R"({"from":-0})",
      R"({"from":-0.0})",
      R"({"from":0})",
      R"({"ended_at":-0})",
      R"({"from":9223372036854775807})",
      R"({"from":9223372036854775808})",
      R"({"from":18446744073709551615})",
      R"({"from":18446744073709551616})",
      R"({"from":-9223372036854775808})",
      R"({"from":-9223372036854775809})",
      R"({"from":1e400})",
      R"({"from":-1e400})",
      R"({"from":1.5e3,"duration":1E2})",
      R"({"from":1.0})",
      R"({"from":true,"duration":[1],"state":{"a":1}})",
      R"({"from":null,"call_id":""})",
      R"({"from":"\u0000nul"})",
      R"({"from":"\ud800"})",
      R"({"from":"\ud83d\ude00"})",
      R"({"from":"\udc00\ud800"})",
      R"({"from":"caf\u00e9","call_id":"\"quoted\"\\"})",
      "{\"from\":\"\xff\xfe\"}",
      "{\"from\":\"\xc3\"}",
      "{\"from\":\"\xed\xa0\x80\"}",
      "\xef\xbb\xbf{\"from\":\"bom\"}",
      R"({"from":"a"} trailing)",
      R"({"from":"a"}{"from":"b"})",
      R"(  {"from" : "spaces" }  )",
      R"([{"from":"array"}])",
      R"("just a string")",
      "",
      "{",
      R"({"from":"a",})",
      R"({"from":01})",
      R"({"from":1.})",
      R"({"from":.5})",
      R"({"from":+1})",
      R"({"from":"tab	inside"})",
      R"({'from':'single'})",
      std::string(2000, '[') + std::string(2000, ']'),
      R"({"a":)" + std::string(500, '[') + std::string(500, ']') + R"(,"from":"deep"})",
      // Past the 64 KiB a thread's reused parser takes: read by a parser of its own.
      R"({"pad":")" + std::string(70000, 'x') + R"(","from":"big","duration":7})",
  };
  int answered = 0;
  for (const std::string& text : texts) {
    answered += ExpectSameAsReference(text) ? 1 : 0;
  }
  // The fast reader is the one used: it answers most of these itself.
  EXPECT_GE(answered, 15);
}

// Protects: the same over 30,000 random corruptions of a real report (bytes flipped, inserted,
// removed, the text cut): never a different reading, never one nlohmann would refuse.
TEST(JsonFieldsTest, CorruptedReportsReadAsTheReferenceReadsThem) {
  const std::string report =
      R"({"call_id":"c-1","direction":"inbound","from":"+33612345678","to":"+33187654321",)"
      R"("state":"ended","ended_at":1764500000,"duration":42,"operator":"ann@example.fr",)"
      R"("n":[1,-2.5e-3,true,false,null,{"x":"\u00e9\n"}]})";
  const std::string alphabet = "{}[]\":,\\-+.0123456789eEtrufalsn \t\n\x80\xc3\xa9\xff";
  std::mt19937 random(20261201);
  int answered = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string text = report;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = random() % text.size();
      const char c = alphabet[random() % alphabet.size()];
      switch (random() % 4) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 2:
          text.erase(at, 1);
          break;
        default:
          text.resize(at);
          break;
      }
    }
    answered += ExpectSameAsReference(text) ? 1 : 0;
    if (HasFailure()) {
      return;  // the first difference is the one to read
    }
  }
  EXPECT_GT(answered, 1000);
}

// Protects: a stored settlement reads the same through ParseFinished (simdjson first) as
// through nlohmann alone, for the stored form, for the previous release's, and corrupted.
TEST(JsonFieldsTest, SettledCallsReadAsTheReferenceReadsThem) {
  FinishedCall call;
  call.event_id = "evt-1";
  call.counterpart_e164 = "+33612345678";
  call.occurred = Clock::time_point(std::chrono::milliseconds(1764500000123));
  call.call.set_call_id("generic:c-1");
  call.call.set_from_number("+33612345678");
  call.call.set_duration_seconds(42);
  auto same = [](const std::string& text) {
    std::optional<FinishedCall> fast = ParseFinished(text);
    std::optional<FinishedCall> reference = ParseFinishedJson(text);
    ASSERT_EQ(fast.has_value(), reference.has_value()) << absl::CHexEscape(text);
    if (fast) {
      EXPECT_EQ(fast->event_id, reference->event_id);
      EXPECT_EQ(fast->counterpart_e164, reference->counterpart_e164);
      EXPECT_EQ(fast->occurred, reference->occurred) << absl::CHexEscape(text);
      EXPECT_EQ(fast->call.SerializeAsString(), reference->call.SerializeAsString());
      EXPECT_EQ(fast->republication, reference->republication);
    }
  };
  const std::string stored = SerializeFinished(call);
  const std::string previous = SerializeFinishedJson(call);
  same(stored);
  same(previous);
  ASSERT_TRUE(ParseFinished(stored).has_value());
  const std::string encoded = absl::Base64Escape(call.call.SerializeAsString());
  for (const std::string at : {"null", "\"x\"", "1.5", "-0", "-5", "9223372036854775807",
                               "9223372036854775808", "18446744073709551615", "true"}) {
    same(R"({"at":)" + at + R"(,"call":")" + encoded + R"(","e164":"","event_id":"e"})");
  }
  same(R"({"call":")" + encoded + R"(","e164":"","event_id":"e"})");
  same(R"({"at":1,"call":")" + encoded + R"(","e164":"","event_id":"e","event_id":"f"})");
  same(R"({"at":1,"call":")" + encoded + R"(","e164":null,"event_id":"e"})");
  same(R"({"at":1,"call":"!!","e164":"","event_id":"e"})");
  std::mt19937 random(7);
  for (int i = 0; i < 5000 && !testing::Test::HasFailure(); ++i) {
    // Outside the call's bytes (corrupted, they are refused alike, but protobuf logs each).
    std::string text = stored;
    const size_t call_begin = text.find(encoded);
    size_t at = random() % (text.size() - encoded.size());
    if (at >= call_begin) {
      at += encoded.size();
    }
    text[at] = "{}\":,0-9a\\"[random() % 11];
    same(text);
  }
}

// Protects: an open call's stored update reads the same through ParseUpdate (simdjson first)
// as through nlohmann alone — the stored form, the previous releases' (without the fields added
// since), non-ASCII text, every member given every other kind of value, numbers past each
// field's range, a member missing or repeated, and corrupted texts — and the stored form is
// read by the fast reader itself.
TEST(JsonFieldsTest, StoredUpdatesReadAsTheReferenceReadsThem) {
  CallUpdate full;
  full.provider = "twilio";
  full.provider_call_id = "CA123";
  full.state = State::kEnded;
  full.direction = CallEvent::INBOUND;
  full.from = "+33612345678";
  full.to = "+33187654321";
  full.line = "sales";
  full.operator_name = "ann@example.fr";
  full.extension = "201";
  full.recording_url = "https://api.twilio.com/rec/RE1";
  full.provider_status = "completed";
  full.transferred_to = "202";
  full.started_at = Clock::time_point(std::chrono::milliseconds(1764500000123));
  full.answered_at = Clock::time_point(std::chrono::milliseconds(1764500005000));
  full.ended_at = Clock::time_point(std::chrono::milliseconds(1764500047000));
  full.duration_seconds = 42;
  full.attempts = 3;
  full.answered = true;
  full.counterpart_e164 = "+33612345678";
  full.dial_result = true;
  full.dial_leg = "CA456";
  full.parent_over = true;
  full.uncertain = true;
  full.awaits_dial = true;
  full.received = Clock::time_point(std::chrono::milliseconds(1764500047500));
  full.recording = true;
  full.child_leg = true;
  full.machine = true;
  CallUpdate bare;
  bare.provider = "generic";
  bare.provider_call_id = "c-1";
  CallUpdate accented = full;
  accented.operator_name = "Zoé Müller";
  accented.line = "ventes \xff";  // invalid UTF-8: the stored form replaces it

  int fast_answers = 0;
  auto same = [&](const std::string& text) {
    std::optional<CallUpdate> fast = ParseUpdate(text);
    std::optional<CallUpdate> reference = ParseUpdateJson(text);
    ASSERT_EQ(fast.has_value(), reference.has_value()) << absl::CHexEscape(text);
    if (fast) {
      EXPECT_EQ(SerializeUpdateJson(*fast), SerializeUpdateJson(*reference))
          << absl::CHexEscape(text);
    }
    if (std::optional<CallUpdate> alone = ParseUpdateFast(text)) {
      ++fast_answers;
      ASSERT_TRUE(reference.has_value()) << absl::CHexEscape(text);
      EXPECT_EQ(SerializeUpdateJson(*alone), SerializeUpdateJson(*reference))
          << absl::CHexEscape(text);
    }
  };

  std::vector<std::string> stored;
  for (const CallUpdate& update : {full, bare, accented}) {
    stored.push_back(SerializeUpdate(update));
    stored.push_back(SerializeUpdateJson(update));
  }
  for (const std::string& text : stored) {
    ASSERT_TRUE(ParseUpdateFast(text).has_value()) << text;
    same(text);
  }
  EXPECT_EQ(SerializeUpdateJson(*ParseUpdate(stored[0])), stored[1]);

  // The previous releases' form: the members added since are absent.
  std::string previous = stored[0];
  for (const std::string key : {"rcv", "leg", "po", "recd", "cl", "am"}) {
    const std::string member = ",\"" + key + "\":";
    const size_t at = previous.find(member);
    ASSERT_NE(at, std::string::npos) << key;
    const size_t end = previous.find_first_of(",}", previous.find(':', at + 1) + 1);
    previous.erase(at, end - at);
  }
  ASSERT_TRUE(ParseUpdateFast(previous).has_value()) << previous;
  same(previous);

  // Each member in turn: every other kind of value, past its range, missing, repeated.
  const std::vector<std::string> values = {
      "null", "\"x\"", "\"\"", "1.5", "-0", "0", "-5", "7", "2147483647", "2147483648",
      "-2147483649", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
      "18446744073709551615", "1e400", "true", "false", "[1]", "{}", "4294967297",
      // Milliseconds past the clock's nanoseconds (2262), either way.
      "17645000050000000", "-17645000050000000"};
  const std::string& text = stored[0];
  for (size_t at = text.find("\":"); at != std::string::npos; at = text.find("\":", at + 1)) {
    const size_t key_begin = text.rfind('"', at - 1);
    const size_t value_end = text.find_first_of(",}", at + 2);  // no value holds , or }
    const std::string key = text.substr(key_begin, at + 2 - key_begin);
    for (const std::string& value : values) {
      same(text.substr(0, at + 2) + value + text.substr(value_end));
    }
    std::string without = text;
    const size_t member_begin = key_begin - 1;  // the comma or the brace before it
    if (text[member_begin] == ',') {
      without.erase(member_begin, value_end - member_begin);
    } else {
      without.erase(key_begin, value_end + 1 - key_begin);
    }
    same(without);
    same(text.substr(0, text.size() - 1) + "," + key + "null}");
    same(text.substr(0, text.size() - 1) + "," + key + text.substr(at + 2, value_end - at - 2) +
         "}");
  }

  // A time the clock cannot hold is no time (converting it overflowed), for both readers.
  const size_t answered_at = text.find("\"aa\":") + 5;
  const std::string past_2262 =
      text.substr(0, answered_at) + "17645000050000" + text.substr(text.find(',', answered_at));
  ASSERT_TRUE(ParseUpdateFast(past_2262).has_value()) << past_2262;
  EXPECT_FALSE(ParseUpdateFast(past_2262)->answered_at.has_value());
  EXPECT_FALSE(ParseUpdateJson(past_2262)->answered_at.has_value());

  std::mt19937 random(20261202);
  const std::string alphabet = "{}[]\":,\\-+.0123456789eEtrufalsn \x80\xc3\xa9";
  for (int i = 0; i < 5000 && !testing::Test::HasFailure(); ++i) {
    std::string corrupted = stored[i % stored.size()];
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits && !corrupted.empty(); ++e) {
      const size_t at = random() % corrupted.size();
      const char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
        case 0:
          corrupted[at] = c;
          break;
        case 1:
          corrupted.insert(corrupted.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          corrupted.erase(at, 1);
          break;
      }
    }
    same(corrupted);
  }
  // The fast reader answers most of them itself: it is the one used.
  EXPECT_GT(fast_answers, 500);
}

}  // namespace
}  // namespace leadflow::telephony
