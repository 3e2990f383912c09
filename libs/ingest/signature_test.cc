#include "ingest/signature.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace leadflow::ingest {
namespace {

using std::chrono::seconds;

// Protects: a key set up once signs what Hmac() signs — SHA-1 and SHA-256, an empty key, a key
// longer than a block (hashed first), the message given in parts or whole — and verifies like
// VerifyHexHmac (either case of hex, a wrong or missing signature refused).
TEST(HmacKeyTest, SignsWhatHmacSigns) {
  const std::string long_key(200, 'k');
  for (HmacAlgorithm algorithm : {HmacAlgorithm::kSha1, HmacAlgorithm::kSha256}) {
    for (const std::string& key : {std::string(), std::string("secret"), long_key}) {
      const HmacKey keyed(algorithm, key);
      const std::string whole = "1700000000.{\"call_id\":\"c-1\"}";
      const std::string expected = Hmac(algorithm, key, whole);
      ASSERT_FALSE(expected.empty());
      EXPECT_EQ(keyed.Sign({whole}), expected);
      EXPECT_EQ(keyed.Sign({"1700000000", ".", "{\"call_id\":\"c-1\"}"}), expected);
      EXPECT_EQ(keyed.Sign({}), Hmac(algorithm, key, ""));
      const std::string hex = HexEncode(expected);
      EXPECT_TRUE(keyed.VerifyHex({"1700000000", ".", "{\"call_id\":\"c-1\"}"}, hex).ok());
      EXPECT_TRUE(keyed.VerifyHex({whole}, absl::AsciiStrToUpper(hex)).ok());
      EXPECT_EQ(keyed.VerifyHex({whole, "x"}, hex).code(), absl::StatusCode::kUnauthenticated);
      EXPECT_EQ(keyed.VerifyHex({whole}, "").code(), absl::StatusCode::kUnauthenticated);
      EXPECT_EQ(VerifyHexHmac(algorithm, key, whole, hex).ok(), true);
    }
  }
}

// Protects: a key's contexts are reused once reset, never carrying a message into the next:
// signatures from many threads at once, each message its own, are all Hmac()'s.
TEST(HmacKeyTest, ReusedContextsFromManyThreads) {
  const HmacKey keyed(HmacAlgorithm::kSha256, "secret");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&keyed, &wrong, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string message = absl::StrCat(t, ".", i, ".{\"call_id\":\"c\"}");
        if (keyed.Sign({message}) != Hmac(HmacAlgorithm::kSha256, "secret", message)) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(wrong.load(), 0);
}

// Protects: the HMAC primitive itself, against the published vectors of RFC 4231 (test case 2,
// HMAC-SHA256) and RFC 2202 (test case 2, HMAC-SHA1). Cross-checked with:
//   echo -n "what do ya want for nothing?" | openssl dgst -sha256 -hmac "Jefe"
//   echo -n "what do ya want for nothing?" | openssl dgst -sha1 -hmac "Jefe"
TEST(HmacTest, RfcVectors) {
  EXPECT_EQ(HexEncode(Hmac(HmacAlgorithm::kSha256, "Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(Hmac(HmacAlgorithm::kSha1, "Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

// Protects: equal means same length and same bytes, nothing less.
TEST(ConstantTimeEqualsTest, LengthAndBytes) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

// Protects: Meta's X-Hub-Signature-256 (and legacy sha1) recipe: hex HMAC of the raw body under
// the App Secret, with its prefix. Expected values computed with:
//   echo -n '{"object":"page","entry":[]}' | openssl dgst -sha256 -hmac "meta-app-secret"
//   echo -n '{"object":"page","entry":[]}' | openssl dgst -sha1 -hmac "meta-app-secret"
TEST(MetaSignatureTest, Recipe) {
  const std::string body = R"({"object":"page","entry":[]})";
  EXPECT_TRUE(
      VerifyMetaSignature("meta-app-secret", body,
                          "sha256=5dcb51eb590634700c8d9cc1fde4d2d5981ca7bb83f250eb3fb71bfd849057ed")
          .ok());
  EXPECT_TRUE(
      VerifyMetaSignature("meta-app-secret", body, "sha1=74bc2bbf5ab6f195d514af1b80ddf3a7c883208e")
          .ok());
  // Upper-case hex is the same signature.
  EXPECT_TRUE(
      VerifyMetaSignature("meta-app-secret", body,
                          "sha256=5DCB51EB590634700C8D9CC1FDE4D2D5981CA7BB83F250EB3FB71BFD849057ED")
          .ok());
  EXPECT_EQ(
      VerifyMetaSignature("other-secret", body,
                          "sha256=5dcb51eb590634700c8d9cc1fde4d2d5981ca7bb83f250eb3fb71bfd849057ed")
          .code(),
      absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      VerifyMetaSignature("meta-app-secret", body + " ",
                          "sha256=5dcb51eb590634700c8d9cc1fde4d2d5981ca7bb83f250eb3fb71bfd849057ed")
          .code(),
      absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyMetaSignature("meta-app-secret", body,
                                "5dcb51eb590634700c8d9cc1fde4d2d5981ca7bb83f250eb3fb71bfd849057ed")
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyMetaSignature("meta-app-secret", body, "").code(),
            absl::StatusCode::kUnauthenticated);
}

// Protects: Viber's recipe, hex HMAC-SHA256 of the body under the auth token, no prefix:
//   echo -n '{"event":"message","message_token":4912661846655238145}' \
//     | openssl dgst -sha256 -hmac "viber-auth-token"
TEST(ViberSignatureTest, Recipe) {
  const std::string body = R"({"event":"message","message_token":4912661846655238145})";
  const std::string good = "5af867e889f98c7b31197d19210882dd5639afb24122647c4a8e0dfc51b210cf";
  EXPECT_TRUE(VerifyViberSignature("viber-auth-token", body, good).ok());
  EXPECT_FALSE(VerifyViberSignature("viber-auth-token", body, "sha256=" + good).ok());
  EXPECT_FALSE(VerifyViberSignature("wrong", body, good).ok());
}

// Protects: Twilio's recipe, Base64(HMAC-SHA1(token, URL + sorted name/value pairs)), whatever
// order the parameters arrived in:
//   echo -n 'https://leads.example/v1/twilio/voice?line=paris''CallSid''CA0001''From'\
//   '+33612345678''To''+33187654321' | openssl dgst -sha1 -hmac "twilio-auth-token" -binary |
//   base64
TEST(TwilioSignatureTest, Recipe) {
  const std::string url = "https://leads.example/v1/twilio/voice?line=paris";
  const std::string good = "Dqz2cIjHgTfNevALJL4VcZfGVuo=";
  EXPECT_TRUE(VerifyTwilioSignature(
                  "twilio-auth-token", url,
                  {{"To", "+33187654321"}, {"CallSid", "CA0001"}, {"From", "+33612345678"}}, good)
                  .ok());
  EXPECT_FALSE(VerifyTwilioSignature(
                   "twilio-auth-token", url,
                   {{"To", "+33187654322"}, {"CallSid", "CA0001"}, {"From", "+33612345678"}}, good)
                   .ok());
  EXPECT_FALSE(VerifyTwilioSignature(
                   "twilio-auth-token", url + "&x=1",
                   {{"To", "+33187654321"}, {"CallSid", "CA0001"}, {"From", "+33612345678"}}, good)
                   .ok());
}

// Protects: Mailgun's recipe, hex HMAC-SHA256(timestamp + token) under the signing key, and its
// timestamp window: a correctly signed but old request is refused.
//   echo -n '1700000000''abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN' \
//     | openssl dgst -sha256 -hmac "mailgun-signing-key"
TEST(MailgunSignatureTest, RecipeAndWindow) {
  const std::string token = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN";
  const std::string good = "b33336a02c1dd10da6cb4e6773ca6998bb0ac2f56b149eab50b5560f655ba2c7";
  auto at = [](int64_t unix) { return std::chrono::system_clock::time_point(seconds(unix)); };
  EXPECT_TRUE(VerifyMailgunSignature("mailgun-signing-key", "1700000000", token, good,
                                     at(1700000060), seconds(120))
                  .ok());
  EXPECT_EQ(VerifyMailgunSignature("mailgun-signing-key", "1700000000", token, good, at(1700000121),
                                   seconds(120))
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(VerifyMailgunSignature("mailgun-signing-key", "1700000001", token, good, at(1700000000),
                                   seconds(120))
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyMailgunSignature("mailgun-signing-key", "17e8", token, good, at(1700000000),
                                   seconds(120))
                .code(),
            absl::StatusCode::kUnauthenticated);
}

// Protects: Telegram's secret token compares whole, and an unset secret accepts nothing.
TEST(TelegramSecretTokenTest, ExactMatchOnly) {
  EXPECT_TRUE(VerifyTelegramSecretToken("s3cret_token-1", "s3cret_token-1").ok());
  EXPECT_FALSE(VerifyTelegramSecretToken("s3cret_token-1", "s3cret_token-").ok());
  EXPECT_FALSE(VerifyTelegramSecretToken("", "").ok());
}

// Protects: a replay within the ttl is refused, one after it is accepted again, and the cache
// never holds more than its capacity (the oldest entry goes first and is counted).
TEST(ReplayCacheTest, RefusesReplaysWithinTtlAndStaysBounded) {
  ReplayCache cache(2, seconds(60));
  auto t0 = std::chrono::steady_clock::time_point(seconds(1000));
  EXPECT_TRUE(cache.CheckAndRemember("a", t0).ok());
  EXPECT_EQ(cache.CheckAndRemember("a", t0 + seconds(59)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(cache.CheckAndRemember("a", t0 + seconds(61)).ok());
  EXPECT_TRUE(cache.CheckAndRemember("b", t0 + seconds(62)).ok());
  EXPECT_TRUE(cache.CheckAndRemember("c", t0 + seconds(63)).ok());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.evicted(), 1u);
  EXPECT_FALSE(cache.CheckAndRemember("c", t0 + seconds(64)).ok());
}

// Protects: the ring of remembered keys wraps without losing its order: past its capacity the
// oldest go first (counted), the newest are still replays, and expiry frees slots from the
// oldest on; a cache of no capacity remembers nothing.
TEST(ReplayCacheTest, WrapsAroundItsCapacity) {
  ReplayCache cache(100, seconds(60));
  auto t0 = std::chrono::steady_clock::time_point(seconds(1000));
  for (int i = 0; i < 1050; ++i) {
    ASSERT_TRUE(cache.CheckAndRemember("key-" + std::to_string(i), t0).ok()) << i;
  }
  EXPECT_EQ(cache.size(), 100u);
  EXPECT_EQ(cache.evicted(), 950u);
  EXPECT_TRUE(cache.CheckAndRemember("key-949", t0).ok());  // forgotten; now the newest
  EXPECT_EQ(cache.CheckAndRemember("key-1049", t0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cache.CheckAndRemember("key-951", t0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(cache.CheckAndRemember("key-950", t0).ok());  // pushed out by key-949
  EXPECT_TRUE(cache.CheckAndRemember("fresh", t0 + seconds(61)).ok());
  EXPECT_EQ(cache.size(), 1u);  // everything older expired

  ReplayCache none(0, seconds(60));
  EXPECT_TRUE(none.CheckAndRemember("a", t0).ok());
  EXPECT_TRUE(none.CheckAndRemember("a", t0).ok());
  EXPECT_EQ(none.size(), 0u);
}

}  // namespace
}  // namespace leadflow::ingest
