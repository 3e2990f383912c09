#include "crm-core/domain/deal/deal.h"

#include <unicode/ucurr.h>
#include <unicode/utypes.h>

#include <algorithm>
#include <array>
#include <cstdlib>

#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {
namespace {

// ISO 4217 active alphabetic codes (list one, 2024), sorted for binary search. Funds and
// precious-metal codes (XAU, XDR, …) are left out: deals are priced in currencies.
constexpr std::array<std::string_view, 155> kCurrencies = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL"};

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

bool IsKnownCurrency(std::string_view code) {
  return std::binary_search(kCurrencies.begin(), kCurrencies.end(), code);
}

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
