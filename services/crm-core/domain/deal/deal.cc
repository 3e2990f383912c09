#include "crm-core/domain/deal/deal.h"

#include <unicode/ucurr.h>
#include <unicode/uenum.h>
#include <unicode/uloc.h>
#include <unicode/utypes.h>

#include <cstdlib>
#include <set>
#include <string>

#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {
namespace {

// The currencies a deal may be priced in, as the ICU the system ships knows them: the ISO 4217
// codes ICU lists in common use and not deprecated (UCURR_COMMON | UCURR_NON_DEPRECATED: no
// funds such as CLF or UYW, no precious metals such as XAU, no testing codes) that some region
// uses today by ICU's territory data (ucurr_getKeywordValuesForLocale with commonlyUsed, region
// by region: HRK, withdrawn in 2023, is no longer Croatia's). ucurr_isAvailable is not used: ICU
// 72 answers false for GBP, INR or DKK today. Read once, at first use; neither added to nor
// trimmed by hand: the list follows the library (docs/api.md, "Money").
const std::set<std::string, std::less<>>& Currencies() {
  static const std::set<std::string, std::less<>>* const currencies = [] {
    std::set<std::string, std::less<>> in_use;
    int32_t length = 0;
    for (const char* const* region = uloc_getISOCountries(); *region != nullptr; ++region) {
      UErrorCode error = U_ZERO_ERROR;
      const std::string locale = std::string("und_") + *region;
      UEnumeration* used =
          ucurr_getKeywordValuesForLocale("currency", locale.c_str(), true, &error);
      if (U_FAILURE(error)) {
        continue;
      }
      while (const char* code = uenum_next(used, &length, &error)) {
        if (U_FAILURE(error)) break;
        in_use.emplace(code, static_cast<size_t>(length));
      }
      uenum_close(used);
    }
    auto* codes = new std::set<std::string, std::less<>>();
    UErrorCode error = U_ZERO_ERROR;
    UEnumeration* iso = ucurr_openISOCurrencies(UCURR_COMMON | UCURR_NON_DEPRECATED, &error);
    if (U_FAILURE(error)) {
      return codes;  // nothing known: every amount is refused, loudly
    }
    while (const char* code = uenum_next(iso, &length, &error)) {
      if (U_FAILURE(error)) break;
      if (length == 3 && in_use.contains(std::string_view(code, 3))) {
        codes->emplace(code, 3);
      }
    }
    uenum_close(iso);
    return codes;
  }();
  return *currencies;
}

}  // namespace

absl::StatusOr<StageChange> PlanStageChange(const Pipeline& from, std::string_view from_stage_id,
                                            const Pipeline* to, std::string_view to_stage_id) {
  const Stage* current = FindStage(from, from_stage_id);
  if (current == nullptr) {
    return absl::FailedPreconditionError(Cat("the deal sits in stage ", Quoted(from_stage_id),
                                             ", which pipeline ", from.id, " lacks"));
  }
  if (to_stage_id.empty()) return absl::InvalidArgumentError("the target stage is blank");
  const Pipeline& target = to != nullptr ? *to : from;
  const Stage* next = FindStage(target, to_stage_id);
  if (next == nullptr) {
    return absl::InvalidArgumentError(
        Cat("stage ", Quoted(to_stage_id), " is not a stage of pipeline ", target.id,
            target.id == from.id
                ? "; to move the deal to another pipeline, name that pipeline and one of its stages"
                : ""));
  }
  StageChange change;
  change.from_pipeline_id = from.id;
  change.from_stage_id = current->id;
  change.to_pipeline_id = target.id;
  change.to_stage_id = next->id;
  change.closed = IsDealClosed(*next);
  change.closes = !IsDealClosed(*current) && change.closed;
  change.reopens = IsDealClosed(*current) && !change.closed;
  change.changes_pipeline = target.id != from.id;
  change.no_op = !change.changes_pipeline && current->id == next->id;
  return change;
}

bool IsKnownCurrency(std::string_view code) { return Currencies().contains(code); }

std::vector<std::string> KnownCurrencies() { return {Currencies().begin(), Currencies().end()}; }

absl::Status ValidateMoney(const Money& money) {
  if (money.amount_minor < 0 || money.amount_minor > kMaxAmountMinor) {
    return absl::InvalidArgumentError(
        Cat("amount_minor ", money.amount_minor, " is not in 0..", kMaxAmountMinor));
  }
  if (!IsKnownCurrency(money.currency)) {
    return absl::InvalidArgumentError(Cat("currency ", Quoted(money.currency),
                                          " is not an ISO 4217 code (three upper-case letters "
                                          "such as EUR or USD)"));
  }
  return absl::OkStatus();
}

std::optional<std::chrono::system_clock::time_point> IdleSince(
    const Stage& stage, std::chrono::system_clock::time_point last_activity) {
  if (!stage.idle_days || IsDealClosed(stage)) return std::nullopt;
  return last_activity + std::chrono::hours(24) * *stage.idle_days;
}

bool IsIdle(const Stage& stage, bool closed, std::chrono::system_clock::time_point last_activity,
            std::chrono::system_clock::time_point now) {
  if (closed) return false;
  std::optional<std::chrono::system_clock::time_point> since = IdleSince(stage, last_activity);
  return since && now >= *since;
}

int MinorUnitDigits(std::string_view currency) {
  if (currency.size() != 3) {
    return 2;
  }
  UChar code[4] = {static_cast<UChar>(currency[0]), static_cast<UChar>(currency[1]),
                   static_cast<UChar>(currency[2]), 0};
  UErrorCode error = U_ZERO_ERROR;
  const int32_t digits = ucurr_getDefaultFractionDigits(code, &error);
  if (U_FAILURE(error) || digits < 0 || digits > 4) {
    return 2;
  }
  return digits;
}

std::string FormatMoney(const Money& money) {
  const int digits = MinorUnitDigits(money.currency);
  int64_t scale = 1;
  for (int i = 0; i < digits; ++i) {
    scale *= 10;
  }
  const int64_t major = money.amount_minor / scale;
  std::string text = Cat(major);
  if (money.amount_minor < 0 && major == 0) {
    text = "-0";
  }
  if (digits > 0) {
    std::string minor = Cat(std::llabs(money.amount_minor % scale));
    text += "." + std::string(digits - minor.size(), '0') + minor;
  }
  return Cat(text, " ", money.currency);
}

}  // namespace leadflow::crm::domain
