#include "webform-ingest/body.h"

#include <gtest/gtest.h>

#include <string>

namespace leadflow::webform {
namespace {

using Outcome = BodyResult::Outcome;

// Protects: a flat JSON object becomes fields; numbers and booleans become text; null is skipped.
TEST(ParseBodyTest, JsonObject) {
  BodyResult result = ParseBody("application/json; charset=utf-8",
                                R"({"email":"a@b.fr","age":42,"ok":true,"x":null,"ratio":0.5})");
  ASSERT_EQ(result.outcome, Outcome::kOk) << result.reason;
  EXPECT_EQ(result.fields.at("email"), "a@b.fr");
  EXPECT_EQ(result.fields.at("age"), "42");
  EXPECT_EQ(result.fields.at("ok"), "true");
  EXPECT_EQ(result.fields.at("ratio"), "0.5");
  EXPECT_EQ(result.fields.count("x"), 0u);
}

// Protects: malformed and hostile JSON is a 400 (or a per-field 422 for wrong types).
TEST(ParseBodyTest, JsonHostile) {
  EXPECT_EQ(ParseBody("application/json", "{").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/json", "").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/json", "[1,2]").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/json", "\"text\"").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/json", "{\"a\":\"\xff\xfe\"}").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/json", "{\"a\":\"x\\u0000y\"}").outcome, Outcome::kMalformed);
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  BodyResult deep_result = ParseBody("application/json", "{\"a\":" + deep + "}");
  EXPECT_EQ(deep_result.outcome, Outcome::kMalformed);
  BodyResult nested = ParseBody("application/json", R"({"email":"a@b.fr","tags":["x"]})");
  EXPECT_EQ(nested.outcome, Outcome::kWrongType);
  EXPECT_EQ(nested.field, "tags");
  std::string many = "{";
  for (int i = 0; i < 1000; ++i) {
    many += (i ? "," : "") + std::string("\"f") + std::to_string(i) + "\":\"v\"";
  }
  many += "}";
  BodyResult too_many = ParseBody("application/json", many);
  EXPECT_EQ(too_many.outcome, Outcome::kMalformed);
  EXPECT_EQ(too_many.code, "too_many_fields");
  BodyResult long_value =
      ParseBody("application/json", "{\"m\":\"" + std::string(40000, 'x') + "\"}");
  EXPECT_EQ(long_value.code, "field_too_long");
}

// Protects: urlencoded decoding, including '+', %-escapes, empty pairs and bad escapes.
TEST(ParseBodyTest, UrlEncoded) {
  BodyResult result = ParseBody("application/x-www-form-urlencoded",
                                "name=Jean+Pierre&email=jp%40ex.fr&&flag&message=a%26b%3Dc");
  ASSERT_EQ(result.outcome, Outcome::kOk) << result.reason;
  EXPECT_EQ(result.fields.at("name"), "Jean Pierre");
  EXPECT_EQ(result.fields.at("email"), "jp@ex.fr");
  EXPECT_EQ(result.fields.at("flag"), "");
  EXPECT_EQ(result.fields.at("message"), "a&b=c");
  EXPECT_EQ(ParseBody("application/x-www-form-urlencoded", "a=%zz").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/x-www-form-urlencoded", "a=%4").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/x-www-form-urlencoded", "a=%00").outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("application/x-www-form-urlencoded", "a=%C3%28").outcome,
            Outcome::kMalformed);  // invalid UTF-8
  EXPECT_EQ(ParseBody("application/x-www-form-urlencoded", "=value").outcome, Outcome::kMalformed);
  std::string many;
  for (int i = 0; i < 5000; ++i) {
    many += "f" + std::to_string(i) + "=v&";
  }
  EXPECT_EQ(ParseBody("application/x-www-form-urlencoded", many).code, "too_many_fields");
}

// Protects: multipart text parts become fields; file parts are ignored; broken bodies are 400.
TEST(ParseBodyTest, Multipart) {
  std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"email\"\r\n\r\n"
      "a@b.fr\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"message\"\r\n\r\n"
      "line 1\r\nline 2\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"cv\"; filename=\"cv.pdf\"\r\n"
      "Content-Type: application/pdf\r\n\r\n"
      "%PDF-1.4\r\n"
      "--XyZ--\r\n";
  BodyResult result = ParseBody("multipart/form-data; boundary=XyZ", body);
  ASSERT_EQ(result.outcome, Outcome::kOk) << result.reason;
  EXPECT_EQ(result.fields.at("email"), "a@b.fr");
  EXPECT_EQ(result.fields.at("message"), "line 1\r\nline 2");
  EXPECT_EQ(result.fields.count("cv"), 0u);
  // Without the final CRLF, as some clients send it.
  EXPECT_EQ(ParseBody("multipart/form-data; boundary=XyZ", body.substr(0, body.size() - 2)).outcome,
            Outcome::kOk);
  EXPECT_EQ(ParseBody("multipart/form-data", body).outcome, Outcome::kMalformed);  // no boundary
  EXPECT_EQ(ParseBody("multipart/form-data; boundary=Other", body).outcome, Outcome::kMalformed);
  EXPECT_EQ(ParseBody("multipart/form-data; boundary=XyZ", body.substr(0, 60)).outcome,
            Outcome::kMalformed);  // truncated
  std::string no_name = "--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n";
  EXPECT_EQ(ParseBody("multipart/form-data; boundary=B", no_name).outcome, Outcome::kMalformed);
  std::string nul_value =
      std::string("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\0y\r\n--B--\r\n", 57);
  EXPECT_EQ(ParseBody("multipart/form-data; boundary=B", nul_value).outcome, Outcome::kMalformed);
}

// Protects: anything but the three form media types is a 415.
TEST(ParseBodyTest, UnsupportedMediaTypes) {
  for (const char* type :
       {"", "text/plain", "application/xml", "garbage;;;", "application/jsonx"}) {
    EXPECT_EQ(ParseBody(type, "{}").outcome, Outcome::kUnsupportedMediaType) << type;
  }
  EXPECT_EQ(ParseBody("Application/JSON", "{}").outcome, Outcome::kOk);
}

}  // namespace
}  // namespace leadflow::webform

namespace leadflow::webform {
namespace {

// Protects (defect k): a repeated JSON key keeps its first value, as documented and as the
// other media types do (nlohmann's default keeps the last).
TEST(ParseBodyTest, JsonDuplicateKeysKeepFirst) {
  BodyResult result = ParseBody("application/json", R"({"email":"first@b.fr","email":"x@y.z"})");
  ASSERT_EQ(result.outcome, BodyResult::Outcome::kOk) << result.code;
  EXPECT_EQ(result.fields.at("email"), "first@b.fr");
  // Nested duplicates are not fields; they do not confuse the top level.
  BodyResult honeypot = ParseBody("application/json", R"({"_hp":"","_hp":"bot"})");
  EXPECT_EQ(honeypot.fields.at("_hp"), "");
}

// Protects (defect l): forms posted in a declared Latin charset (Content-Type charset or the
// `_charset_` field) are transcoded to UTF-8; undeclared invalid UTF-8 stays 400 invalid_text.
// "Hélène Œuvre €" in windows-1252 is 48 E9 6C E8 6E 65 20 8C 75 76 72 65 20 80, in ISO-8859-15
// the Œ is BC and the € A4.
TEST(ParseBodyTest, LatinCharsetsTranscoded) {
  BodyResult latin1 = ParseBody("application/x-www-form-urlencoded; charset=ISO-8859-1",
                                "name=H%E9l%E8ne&city=Besan%E7on");
  ASSERT_EQ(latin1.outcome, BodyResult::Outcome::kOk) << latin1.code;
  EXPECT_EQ(latin1.fields.at("name"), "H\xc3\xa9l\xc3\xa8ne");
  EXPECT_EQ(latin1.fields.at("city"), "Besan\xc3\xa7on");

  BodyResult cp1252 =
      ParseBody("application/x-www-form-urlencoded; charset=windows-1252", "message=%8Cuvre+%80");
  ASSERT_EQ(cp1252.outcome, BodyResult::Outcome::kOk);
  EXPECT_EQ(cp1252.fields.at("message"), "\xc5\x92uvre \xe2\x82\xac");

  BodyResult latin9 =
      ParseBody("application/x-www-form-urlencoded; charset=iso-8859-15", "message=%BCuvre+%A4");
  ASSERT_EQ(latin9.outcome, BodyResult::Outcome::kOk);
  EXPECT_EQ(latin9.fields.at("message"), "\xc5\x92uvre \xe2\x82\xac");

  // The _charset_ field, as browsers fill it for accept-charset forms; it is not a field.
  BodyResult field =
      ParseBody("application/x-www-form-urlencoded", "name=Ren%E9&_charset_=ISO-8859-1");
  ASSERT_EQ(field.outcome, BodyResult::Outcome::kOk) << field.code;
  EXPECT_EQ(field.fields.at("name"), "Ren\xc3\xa9");
  EXPECT_EQ(field.fields.count("_charset_"), 0u);

  BodyResult multipart = ParseBody(
      "multipart/form-data; boundary=XyZ",
      "--XyZ\r\nContent-Disposition: form-data; name=\"_charset_\"\r\n\r\nwindows-1252\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nRen\xe9\r\n"
      "--XyZ--\r\n");
  ASSERT_EQ(multipart.outcome, BodyResult::Outcome::kOk) << multipart.code;
  EXPECT_EQ(multipart.fields.at("name"), "Ren\xc3\xa9");

  BodyResult undeclared = ParseBody("application/x-www-form-urlencoded", "name=Ren%E9");
  EXPECT_EQ(undeclared.outcome, BodyResult::Outcome::kMalformed);
  EXPECT_EQ(undeclared.code, "invalid_text");

  BodyResult unknown = ParseBody("application/x-www-form-urlencoded; charset=koi8-r", "name=%E9");
  EXPECT_EQ(unknown.outcome, BodyResult::Outcome::kUnsupportedMediaType);
  EXPECT_EQ(unknown.code, "unsupported_charset");

  // UTF-8 declared: unchanged.
  BodyResult utf8 = ParseBody("application/x-www-form-urlencoded; charset=UTF-8", "name=Ren%C3%A9");
  EXPECT_EQ(utf8.fields.at("name"), "Ren\xc3\xa9");
}

}  // namespace
}  // namespace leadflow::webform
