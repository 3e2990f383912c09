#include "webform-ingest/forms.h"

#include "absl/strings/str_cat.h"

#include <gtest/gtest.h>

namespace leadflow::webform {
namespace {

// Protects: without a forms file every form and origin is accepted.
TEST(FormsTest, OpenByDefault) {
  FormsConfig forms;
  EXPECT_TRUE(forms.Known("anything"));
  EXPECT_EQ(DecideOrigin(forms, "contact", "https://evil.example"), OriginDecision::kAllowed);
  EXPECT_EQ(DecideOrigin(forms, "contact", std::nullopt), OriginDecision::kNoOrigin);
}

// Protects: with a forms file, unknown forms are unknown and origins are checked per form.
TEST(FormsTest, RestrictedByFile) {
  auto forms = FormsConfig::Parse(R"({"forms": {
      "contact": {"allowed_origins": ["https://Shop.example"]},
      "quote": {}}})");
  ASSERT_TRUE(forms.ok()) << forms.status();
  EXPECT_TRUE(forms->Known("contact"));
  EXPECT_TRUE(forms->Known("quote"));
  EXPECT_FALSE(forms->Known("other"));
  EXPECT_EQ(DecideOrigin(*forms, "contact", "https://shop.example"), OriginDecision::kAllowed);
  EXPECT_EQ(DecideOrigin(*forms, "contact", "https://evil.example"), OriginDecision::kForbidden);
  EXPECT_EQ(DecideOrigin(*forms, "quote", "https://shop.example"), OriginDecision::kForbidden);
  EXPECT_EQ(DecideOrigin(*forms, "quote", std::nullopt), OriginDecision::kNoOrigin);
}

// Protects: a broken forms file stops the start instead of silently opening every form.
TEST(FormsTest, RejectsBrokenFiles) {
  EXPECT_FALSE(FormsConfig::Parse("").ok());
  EXPECT_FALSE(FormsConfig::Parse("[]").ok());
  EXPECT_FALSE(FormsConfig::Parse(R"({"forms": []})").ok());
  EXPECT_FALSE(FormsConfig::Parse(R"({"forms": {"a b": {}}})").ok());
  EXPECT_FALSE(FormsConfig::Parse(R"({"forms": {"a": {"allowed_origins": "x"}}})").ok());
  EXPECT_FALSE(FormsConfig::Parse(R"({"forms": {"a": {"allowed_origins": [1]}}})").ok());
  EXPECT_FALSE(FormsConfig::Load("/nonexistent/forms.json").ok());
}

// Protects: form ids are safe path segments and Redis/metric-friendly.
TEST(FormsTest, FormIds) {
  EXPECT_TRUE(ValidFormId("contact-us_2.fr"));
  EXPECT_FALSE(ValidFormId(""));
  EXPECT_FALSE(ValidFormId("a/b"));
  EXPECT_FALSE(ValidFormId(std::string(65, 'a')));
  EXPECT_FALSE(ValidFormId("é"));
}

}  // namespace
}  // namespace leadflow::webform

namespace leadflow::webform {
namespace {

// Protects (defect m): per-form success and error pages are read from the forms file, and only
// absolute http(s) URLs without spaces or controls are accepted (they go into Location).
TEST(FormsTest, PagesPerForm) {
  auto forms = FormsConfig::Parse(R"({"forms": {
      "contact": {"success_url": "https://shop.example/thanks", "error_url": "https://shop.example/oops"},
      "plain": {}}})");
  ASSERT_TRUE(forms.ok()) << forms.status();
  ASSERT_NE(forms->Pages("contact"), nullptr);
  EXPECT_EQ(forms->Pages("contact")->success_url, "https://shop.example/thanks");
  EXPECT_EQ(forms->Pages("contact")->error_url, "https://shop.example/oops");
  EXPECT_EQ(forms->Pages("plain"), nullptr);
  EXPECT_TRUE(forms->Known("plain"));
  for (const char* bad :
       {R"x("javascript:alert(1)")x", R"("/thanks")", R"("https://a.example/x\r\nSet-Cookie: a")",
        R"("https://a.example/a b")", "42"}) {
    EXPECT_FALSE(
        FormsConfig::Parse(absl::StrCat(R"({"forms": {"c": {"success_url": )", bad, "}}}")).ok())
        << bad;
  }
}

}  // namespace
}  // namespace leadflow::webform
