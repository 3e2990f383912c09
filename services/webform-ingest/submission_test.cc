#include "webform-ingest/submission.h"

#include <gtest/gtest.h>

#include <set>

namespace leadflow::webform {
namespace {

using events::v1::Identity;

RequestInfo Info() {
  return {"contact", "203.0.113.7", "Mozilla/5.0", "https://shop.example/contact",
          std::chrono::system_clock::time_point(std::chrono::seconds(1700000000))};
}

// Protects: conventional fields land in their place, the rest in custom_fields, identities are
// normalised and sorted, and the key is the phone.
TEST(BuildSubmissionTest, BuildsTheEvent) {
  Fields fields = {{"name", "Jean"},
                   {"last_name", "Dupont"},
                   {"email", " Jean@Ex.FR "},
                   {"phone", "06 12 34 56 78"},
                   {"company", "ACME"},
                   {"city", "Lyon"},
                   {"message", "Need a quote"},
                   {"utm_source", "google"},
                   {"utm_campaign", "spring"},
                   {"budget", "5000"}};
  Submission submission = BuildSubmission(fields, Info(), {});
  ASSERT_TRUE(submission.errors.empty());
  const auto& event = submission.event;
  ASSERT_EQ(event.identities_size(), 2);
  EXPECT_EQ(event.identities(0).kind(), Identity::PHONE);
  EXPECT_EQ(event.identities(0).value(), "+33612345678");
  EXPECT_EQ(event.identities(1).value(), "jean@ex.fr");
  EXPECT_EQ(submission.key, "+33612345678");
  EXPECT_EQ(event.person().first_name(), "Jean");
  EXPECT_EQ(event.person().last_name(), "Dupont");
  EXPECT_EQ(event.person().company(), "ACME");
  EXPECT_EQ(event.person().city(), "Lyon");
  EXPECT_EQ(event.web_form().form_id(), "contact");
  EXPECT_EQ(event.web_form().message(), "Need a quote");
  EXPECT_EQ(event.web_form().utm().source(), "google");
  EXPECT_EQ(event.web_form().utm().campaign(), "spring");
  EXPECT_EQ(event.web_form().custom_fields().at("budget"), "5000");
  EXPECT_EQ(event.web_form().page_url(), "https://shop.example/contact");  // from Referer
  EXPECT_EQ(event.source().service(), "webform-ingest");
  EXPECT_EQ(event.source().provider(), "webform");
  EXPECT_EQ(event.source().reference(), "contact");
  EXPECT_EQ(event.source().client_ip(), "203.0.113.7");
  EXPECT_EQ(event.received_at().seconds(), 1700000000);
}

// Protects: 422 names every bad field; at least one identity is required.
TEST(BuildSubmissionTest, ValidationNamesFields) {
  Submission none = BuildSubmission({{"name", "x"}}, Info(), {});
  EXPECT_EQ(none.errors.count("email"), 1u);
  EXPECT_EQ(none.errors.count("phone"), 1u);
  Submission both_bad = BuildSubmission({{"email", "nope"}, {"phone", "12"}}, Info(), {});
  EXPECT_EQ(both_bad.errors.count("email"), 1u);
  EXPECT_EQ(both_bad.errors.count("phone"), 1u);
  Submission one_bad = BuildSubmission({{"email", "a@b.fr"}, {"phone", "abc"}}, Info(), {});
  EXPECT_EQ(one_bad.errors.size(), 1u);
  EXPECT_EQ(one_bad.errors.count("phone"), 1u);
  Submission email_only = BuildSubmission({{"email", "a@b.fr"}}, Info(), {});
  EXPECT_TRUE(email_only.errors.empty());
  EXPECT_EQ(email_only.key, "a@b.fr");
}

// Protects: the honeypot short-circuits everything.
TEST(BuildSubmissionTest, Honeypot) {
  EXPECT_TRUE(BuildSubmission({{"_hp", "http://spam"}}, Info(), {}).honeypot);
  EXPECT_FALSE(BuildSubmission({{"_hp", ""}, {"email", "a@b.fr"}}, Info(), {}).honeypot);
}

// Protects: custom fields are bounded in count and size.
TEST(BuildSubmissionTest, CustomFieldsBounded) {
  Fields fields = {{"email", "a@b.fr"}};
  for (int i = 0; i < 60; ++i) {
    fields["c" + std::to_string(i)] = "v";
  }
  EXPECT_EQ(BuildSubmission(fields, Info(), {}).errors.count("custom_fields"), 1u);
  Submission big =
      BuildSubmission({{"email", "a@b.fr"}, {"notes", std::string(3000, 'x')}}, Info(), {});
  EXPECT_EQ(big.errors.count("notes"), 1u);
  Submission long_name =
      BuildSubmission({{"email", "a@b.fr"}, {"name", std::string(1000, 'x')}}, Info(), {});
  EXPECT_EQ(long_name.errors.count("name"), 1u);
}

// Protects: event ids — the same idempotency key and content give the same id; the form and
// the content are part of it (a key reused with other content is another event, never a
// duplicate crm-core would drop).
TEST(EventIdTest, IdempotencyKey) {
  auto id = [](const std::string& form, const std::string& key, const std::string& print = "fp") {
    return EventIdFromIdempotencyKey(form, key, print);
  };
  EXPECT_EQ(id("contact", "k1"), id("contact", "k1"));
  EXPECT_NE(id("contact", "k1"), id("contact", "k2"));
  EXPECT_NE(id("contact", "k1"), id("quote", "k1"));
  EXPECT_NE(id("contact", "k1", "fp1"), id("contact", "k1", "fp2"));
  EXPECT_EQ(id("a", "bc").rfind("wf:", 0), 0u);
  EXPECT_NE(id("ab", "c"), id("a", "bc"));
  EXPECT_EQ(IdempotencyBinding("contact", "k1"), IdempotencyBinding("contact", "k1"));
  EXPECT_NE(IdempotencyBinding("contact", "k1"), IdempotencyBinding("quote", "k1"));
  EXPECT_NE(RandomEventId(), RandomEventId());
}

// Protects: random event ids have the shape of every event id and never repeat, also across
// the refills of the per-thread buffer of random bytes they are drawn from.
TEST(EventIdTest, RandomIdsAreDistinctAndShaped) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomEventId();
    ASSERT_EQ(id.size(), 67u) << id;
    EXPECT_EQ(id.rfind("wf:", 0), 0u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 3), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

// Protects: fingerprints ignore time, client and field order differences but not content.
TEST(EventIdTest, Fingerprint) {
  Fields fields = {{"email", "A@b.fr"}, {"message", "hi"}, {"x", "1"}, {"y", "2"}};
  RequestInfo later = Info();
  later.received_at += std::chrono::seconds(30);
  later.client_ip = "198.51.100.1";
  std::string first = Fingerprint(BuildSubmission(fields, Info(), {}).event);
  Fields same_normalised = fields;
  same_normalised["email"] = " a@B.FR";
  EXPECT_EQ(first, Fingerprint(BuildSubmission(same_normalised, later, {}).event));
  Fields different = fields;
  different["message"] = "hello";
  EXPECT_NE(first, Fingerprint(BuildSubmission(different, Info(), {}).event));
  auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1700000400));
  EXPECT_EQ(EventIdFromFingerprintBucket(first, t),
            EventIdFromFingerprintBucket(first, t + std::chrono::seconds(100)));
  EXPECT_NE(EventIdFromFingerprintBucket(first, t),
            EventIdFromFingerprintBucket(first, t + std::chrono::seconds(600)));
}

// Protects: header text that is not printable ASCII cannot make the protobuf invalid UTF-8.
TEST(BuildSubmissionTest, HeaderTextSanitised) {
  RequestInfo info = Info();
  info.user_agent = "bot\xff\xfe\n";
  info.referer_header = "https://x.example/\xc3";
  Submission submission = BuildSubmission({{"email", "a@b.fr"}}, info, {});
  EXPECT_EQ(submission.event.source().user_agent(), "bot???");
  EXPECT_EQ(submission.event.web_form().page_url(), "https://x.example/?");
}

}  // namespace
}  // namespace leadflow::webform
