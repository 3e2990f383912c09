#include "ingest/form_params.h"

#include <gtest/gtest.h>

namespace leadflow::ingest {
namespace {

// Protects: every pair is kept, decoded, in order, repeated names included, so that a
// provider's signature over all of them can be checked.
TEST(FormParamsTest, DecodesEveryPairInOrder) {
  auto params = ParseFormParams(
      "To=%2B33187654321&From=anonymous&Digits=1&Digits=2&Empty=&Flag"
      "&Text=a+b%26c");
  ASSERT_TRUE(params.ok()) << params.status();
  FormParams expected = {{"To", "+33187654321"}, {"From", "anonymous"}, {"Digits", "1"},
                         {"Digits", "2"},        {"Empty", ""},         {"Flag", ""},
                         {"Text", "a b&c"}};
  EXPECT_EQ(*params, expected);
  EXPECT_EQ(FindParam(*params, "Digits"), "1");
  EXPECT_EQ(FindParam(*params, "Missing"), std::nullopt);
  EXPECT_TRUE(ParseFormParams("")->empty());
}

// Protects: malformed bodies are refused, not half-read.
TEST(FormParamsTest, RefusesMalformedBodies) {
  EXPECT_FALSE(ParseFormParams("a=%2").ok());
  EXPECT_FALSE(ParseFormParams("a=%zz").ok());
  EXPECT_FALSE(ParseFormParams("a=%00").ok());
  EXPECT_FALSE(ParseFormParams("a=%C3%28").ok());  // not UTF-8
  EXPECT_FALSE(ParseFormParams("a=1&b=2&c=3", 2).ok());
  EXPECT_TRUE(ParseFormParams("a=1&b=2", 2).ok());
}

// Protects: Twilio's documented example (its security docs and every Twilio helper library):
// auth token 12345, https://mycompany.com/myapp.php?foo=1&bar=2 and these parameters give
// RSOYDt4T1cUTdK1PDd93/VVr8B8=. The service sits behind a proxy: the URL Twilio signed is
// the configured public URL followed by the target the service received.
TEST(TwilioRequestTest, DocumentedExample) {
  auto params = ParseFormParams(
      "Digits=1234&To=%2B18005551212&From=%2B14158675309&Caller=%2B14158675309"
      "&CallSid=CA1234567890ABCDE");
  ASSERT_TRUE(params.ok());
  const std::string signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
  EXPECT_TRUE(VerifyTwilioRequest("12345", "https://mycompany.com", "/myapp.php?foo=1&bar=2",
                                  *params, signature)
                  .ok());
  EXPECT_TRUE(VerifyTwilioRequest("12345", "https://mycompany.com/", "/myapp.php?foo=1&bar=2",
                                  *params, signature)
                  .ok());
  // What the service sees behind the proxy is not what Twilio signed.
  EXPECT_FALSE(VerifyTwilioRequest("12345", "http://10.0.0.7:8083", "/myapp.php?foo=1&bar=2",
                                   *params, signature)
                   .ok());
  FormParams tampered = *params;
  tampered[0].second = "9999";
  EXPECT_EQ(VerifyTwilioRequest("12345", "https://mycompany.com", "/myapp.php?foo=1&bar=2",
                                tampered, signature)
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(VerifyTwilioRequest("54321", "https://mycompany.com", "/myapp.php?foo=1&bar=2",
                                   *params, signature)
                   .ok());
  EXPECT_FALSE(
      VerifyTwilioRequest("12345", "https://mycompany.com", "/myapp.php?foo=1&bar=2", *params, "")
          .ok());
}

// Protects: a URL signed with the scheme's default port written out (Twilio signs some that
// way) and one without are the same URL, as Twilio's RequestValidator takes them: the
// documented example's signature (over https://mycompany.com/…) is accepted with the public
// URL configured as https://mycompany.com:443, and the same request signed over
// https://mycompany.com:443/… (kvajT1Ptam85bY51eRf/AJRuM3w=, HMAC-SHA1 under 12345) with it
// configured without the port. Another port is another URL.
TEST(TwilioRequestTest, DefaultPortWrittenOrNot) {
  auto params = ParseFormParams(
      "Digits=1234&To=%2B18005551212&From=%2B14158675309&Caller=%2B14158675309"
      "&CallSid=CA1234567890ABCDE");
  ASSERT_TRUE(params.ok());
  const std::string target = "/myapp.php?foo=1&bar=2";
  const std::string without_port = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
  const std::string with_port = "kvajT1Ptam85bY51eRf/AJRuM3w=";
  EXPECT_TRUE(
      VerifyTwilioRequest("12345", "https://mycompany.com:443", target, *params, without_port)
          .ok());
  EXPECT_TRUE(
      VerifyTwilioRequest("12345", "https://mycompany.com/", target, *params, with_port).ok());
  EXPECT_TRUE(
      VerifyTwilioRequest("12345", "https://mycompany.com:443", target, *params, with_port).ok());
  EXPECT_FALSE(
      VerifyTwilioRequest("12345", "https://mycompany.com:8443", target, *params, without_port)
          .ok());
  EXPECT_FALSE(VerifyTwilioRequest("12345", "https://mycompany.com", target, *params, "AAAA").ok());

  EXPECT_EQ(OtherDefaultPortForm("https://calls.example.com/telephony"),
            "https://calls.example.com:443/telephony");
  EXPECT_EQ(OtherDefaultPortForm("https://calls.example.com:443/telephony"),
            "https://calls.example.com/telephony");
  EXPECT_EQ(OtherDefaultPortForm("http://calls.example.com"), "http://calls.example.com:80");
  EXPECT_EQ(OtherDefaultPortForm("http://calls.example.com:80"), "http://calls.example.com");
  EXPECT_EQ(OtherDefaultPortForm("https://[2001:db8::1]/t"), "https://[2001:db8::1]:443/t");
  EXPECT_EQ(OtherDefaultPortForm("https://calls.example.com:8443/t"), std::nullopt);
  EXPECT_EQ(OtherDefaultPortForm("ftp://calls.example.com"), std::nullopt);
}

}  // namespace
}  // namespace leadflow::ingest
