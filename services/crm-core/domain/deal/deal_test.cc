// Protects: a deal is closed exactly when its stage is SUCCESS or FAILURE; a stage move stays
// inside the deal's pipeline unless another pipeline is named; money is integer minor units of a
// known ISO 4217 currency; idleness follows the stage's idle_days and the last activity.

#include "crm-core/domain/deal/deal.h"

#include <gtest/gtest.h>
#include <unicode/ucurr.h>
#include <unicode/uenum.h>

#include <algorithm>
#include <string>
#include <vector>

namespace leadflow::crm::domain {
namespace {

using std::chrono::hours;

Pipeline Other() {
  Pipeline pipeline = DefaultPipeline(2, "Interior works");
  pipeline.stages[0].id = "C2:NEW";
  return pipeline;
}

TEST(Deal, ClosedFollowsTheStage) {
  Pipeline p = DefaultPipeline();
  EXPECT_FALSE(IsDealClosed(*FindStage(p, "NEW")));
  EXPECT_FALSE(IsDealClosed(*FindStage(p, "FINAL_INVOICE")));
  EXPECT_TRUE(IsDealClosed(*FindStage(p, "WON")));
  EXPECT_TRUE(IsDealClosed(*FindStage(p, "LOSE")));
}

TEST(PlanStageChange, WithinThePipeline) {
  Pipeline p = DefaultPipeline();
  absl::StatusOr<StageChange> change = PlanStageChange(p, "NEW", nullptr, "WON");
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->closed);
  EXPECT_TRUE(change->closes);
  EXPECT_FALSE(change->reopens);
  EXPECT_FALSE(change->changes_pipeline);
  EXPECT_FALSE(change->no_op);
  change = PlanStageChange(p, "LOSE", nullptr, "EXECUTING");
  ASSERT_TRUE(change.ok());
  EXPECT_TRUE(change->reopens);
  EXPECT_FALSE(change->closed);
  change = PlanStageChange(p, "NEW", &p, "NEW");
  ASSERT_TRUE(change.ok());
  EXPECT_TRUE(change->no_op);
}

TEST(PlanStageChange, AnotherPipelineOnlyWhenNamed) {
  Pipeline p = DefaultPipeline();
  Pipeline other = Other();
  absl::Status s = PlanStageChange(p, "NEW", nullptr, "C2:NEW").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(s.message()).find("not a stage of pipeline 1"), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("name that pipeline"), std::string::npos) << s;
  absl::StatusOr<StageChange> change = PlanStageChange(p, "EXECUTING", &other, "C2:NEW");
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->changes_pipeline);
  EXPECT_EQ(change->to_pipeline_id, 2);
  EXPECT_EQ(change->from_stage_id, "EXECUTING");
  // Same stage id in another pipeline is still a move.
  change = PlanStageChange(p, "WON", &other, "WON");
  ASSERT_TRUE(change.ok());
  EXPECT_FALSE(change->no_op);
  EXPECT_EQ(PlanStageChange(p, "NEW", &other, "PREPARATION_X").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanStageChange(p, "NEW", nullptr, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanStageChange(p, "GONE", nullptr, "NEW").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Money, IntegerMinorUnitsOfAKnownCurrency) {
  EXPECT_TRUE(ValidateMoney({1234, "EUR"}).ok());
  EXPECT_TRUE(ValidateMoney({0, "USD"}).ok());
  EXPECT_TRUE(ValidateMoney({kMaxAmountMinor, "JPY"}).ok());
  for (Money bad : {Money{-1, "EUR"}, Money{kMaxAmountMinor + 1, "EUR"}, Money{1, "eur"},
                    Money{1, "XYZ"}, Money{1, ""}, Money{1, "EURO"}, Money{1, "EU"}}) {
    EXPECT_EQ(ValidateMoney(bad).code(), absl::StatusCode::kInvalidArgument)
        << bad.amount_minor << " " << bad.currency;
  }
  EXPECT_TRUE(IsKnownCurrency("AED"));
  EXPECT_FALSE(IsKnownCurrency("ZZZ"));
}

// ICU's answer for one region: the currencies it uses today (commonly used), in ICU's order.
std::vector<std::string> IcuCurrenciesOf(const char* region) {
  std::vector<std::string> codes;
  UErrorCode error = U_ZERO_ERROR;
  UEnumeration* used = ucurr_getKeywordValuesForLocale(
      "currency", (std::string("und_") + region).c_str(), true, &error);
  int32_t length = 0;
  while (const char* code = uenum_next(used, &length, &error)) codes.emplace_back(code, length);
  uenum_close(used);
  return codes;
}

// Protects: the accepted currencies are ICU's, not a hand-kept table: a code withdrawn by ICU's
// territory data is refused (HRK since 2023, ZWL, VEF), codes in use are accepted (VES, EUR, GBP,
// JPY, Croatia's EUR), funds, metals and testing codes are refused (CLF, UYW, XAU, XXX), ZWG is
// accepted exactly when ICU holds it as Zimbabwe's currency today (ICU 72 does not know it), and
// every accepted code has ICU's minor-unit digits.
TEST(Money, CurrenciesFollowIcu) {
  for (const char* code : {"EUR", "USD", "GBP", "INR", "JPY", "KWD", "VES", "AED"}) {
    EXPECT_TRUE(IsKnownCurrency(code)) << code;
  }
  for (const char* code : {"HRK", "ZWL", "VEF", "CLF", "UYW", "XAU", "XDR", "XXX", "XTS"}) {
    EXPECT_FALSE(IsKnownCurrency(code)) << code;
  }
  const std::vector<std::string> croatia = IcuCurrenciesOf("HR");
  ASSERT_FALSE(croatia.empty());
  EXPECT_TRUE(IsKnownCurrency(croatia.front())) << croatia.front();
  const std::vector<std::string> zimbabwe = IcuCurrenciesOf("ZW");
  EXPECT_EQ(IsKnownCurrency("ZWG"),
            std::find(zimbabwe.begin(), zimbabwe.end(), "ZWG") != zimbabwe.end());
  const std::vector<std::string> known = KnownCurrencies();
  EXPECT_GT(known.size(), 100u);
  for (const std::string& code : known) {
    const int digits = MinorUnitDigits(code);
    EXPECT_TRUE(digits >= 0 && digits <= 4) << code;
  }
}

// Protects: an amount in history reads in major units with the currency's own minor-unit digits
// (500000 EUR minor units is 5000.00 EUR, not "500000 EUR"; JPY has none, KWD three).
TEST(Money, FormattedWithTheCurrencysMinorUnitDigits) {
  EXPECT_EQ(MinorUnitDigits("EUR"), 2);
  EXPECT_EQ(MinorUnitDigits("JPY"), 0);
  EXPECT_EQ(MinorUnitDigits("KWD"), 3);
  EXPECT_EQ(FormatMoney({500000, "EUR"}), "5000.00 EUR");
  EXPECT_EQ(FormatMoney({0, "EUR"}), "0.00 EUR");
  EXPECT_EQ(FormatMoney({5, "USD"}), "0.05 USD");
  EXPECT_EQ(FormatMoney({500000, "JPY"}), "500000 JPY");
  EXPECT_EQ(FormatMoney({1500, "KWD"}), "1.500 KWD");
  EXPECT_EQ(FormatMoney({kMaxAmountMinor, "EUR"}), "10000000000000.00 EUR");
}

TEST(Idle, AfterIdleDaysWithoutActivity) {
  Stage stage{.id = "EXECUTING", .name = "In progress", .idle_days = 3};
  auto last = std::chrono::system_clock::time_point{} + hours(1000);
  EXPECT_FALSE(IsIdle(stage, false, last, last + hours(71)));
  EXPECT_TRUE(IsIdle(stage, false, last, last + hours(72)));
  EXPECT_TRUE(IsIdle(stage, false, last, last + hours(500)));
  EXPECT_FALSE(IsIdle(stage, true, last, last + hours(500)));  // closed deals never rot
  Stage no_threshold{.id = "NEW", .name = "New"};
  EXPECT_FALSE(IsIdle(no_threshold, false, last, last + hours(100000)));
  EXPECT_EQ(IdleSince(no_threshold, last), std::nullopt);
  EXPECT_EQ(IdleSince(stage, last), last + hours(72));
  Stage won{.id = "WON", .name = "Won", .semantics = Semantics::kSuccess, .idle_days = 1};
  EXPECT_EQ(IdleSince(won, last), std::nullopt);
}

}  // namespace
}  // namespace leadflow::crm::domain
