#pragma once

// A deal's rules: closed or open from its stage, stage moves within and across pipelines, money,
// and idleness ("rotting").

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crm-core/domain/common/types.h"
#include "crm-core/domain/pipeline/pipeline.h"

namespace leadflow::crm::domain {

/// A deal is closed iff its stage's semantics is SUCCESS (won) or FAILURE (lost); deals.closed
/// stores it so that listings and the matching rules ("an open deal") need no join.
inline bool IsDealClosed(const Stage& stage) { return IsClosed(stage.semantics); }

/// What a stage move does, for the store to write (deals row, deal_stage_history, history).
struct StageChange {
  int64_t from_pipeline_id = 0;
  std::string from_stage_id;
  int64_t to_pipeline_id = 0;
  std::string to_stage_id;
  bool closed = false;   // the deal's state after the move
  bool closes = false;   // open → closed
  bool reopens = false;  // closed → open
  bool changes_pipeline = false;
  bool no_op = false;  // the deal is there already: nothing to write
};

/// Plans moving a deal that sits in `from_stage_id` of `from`. `to` is nullptr for a move within
/// the deal's pipeline; moving to another pipeline is explicit: the caller passes that pipeline
/// and a stage of it (passing the deal's own pipeline as `to` is a move within it). Errors:
/// INVALID_ARGUMENT for a blank target stage or one the target pipeline lacks ("stage X is not a
/// stage of pipeline N; …"), since the request is what is wrong; FAILED_PRECONDITION when the
/// deal's recorded stage is not in `from` (an inconsistency worth refusing loudly).
absl::StatusOr<StageChange> PlanStageChange(const Pipeline& from, std::string_view from_stage_id,
                                            const Pipeline* to, std::string_view to_stage_id);

/// An amount in integer minor units of an ISO 4217 currency (common.proto's Money).
struct Money {
  int64_t amount_minor = 0;
  std::string currency;
  friend bool operator==(const Money&, const Money&) = default;
};

/// The largest amount accepted (10^15 minor units: ten trillion euros), far inside int64 so that
/// sums over many deals cannot overflow.
inline constexpr int64_t kMaxAmountMinor = 1'000'000'000'000'000;

/// True for a currency a deal may be priced in: an ISO 4217 code that the ICU the system ships
/// lists in common use and not deprecated, and that some region uses today by ICU's territory
/// data (no funds, precious metals or testing codes; "eur" and "XYZ" are not). The list follows
/// ICU, never a hand-kept table.
bool IsKnownCurrency(std::string_view code);

/// Every code IsKnownCurrency accepts, sorted.
std::vector<std::string> KnownCurrencies();

/// INVALID_ARGUMENT unless 0 ≤ amount ≤ kMaxAmountMinor and the currency is known.
absl::Status ValidateMoney(const Money& money);

/// The digits after the decimal point of `currency`'s minor unit (ISO 4217 as ICU holds it:
/// EUR 2, JPY 0, KWD 3); 2 for a code ICU does not know.
int MinorUnitDigits(std::string_view currency);

/// How a person reads an amount: major units with the currency's minor-unit digits, then the
/// code ("5000.00 EUR" for 500000 EUR, "500000 JPY", "1.500 KWD" for 1500 KWD).
std::string FormatMoney(const Money& money);

/// Idle ("rotting", Pipedrive's word): an open deal whose stage sets idle_days and that has had
/// no activity for at least that many days. `last_activity` is deals.last_activity_at, which the
/// store sets when the deal is created, moves stage, and gets an activity.
bool IsIdle(const Stage& stage, bool closed, std::chrono::system_clock::time_point last_activity,
            std::chrono::system_clock::time_point now);

/// The moment from which a deal last active at `last_activity` in `stage` counts as idle, or
/// std::nullopt when it never does (no threshold).
std::optional<std::chrono::system_clock::time_point> IdleSince(
    const Stage& stage, std::chrono::system_clock::time_point last_activity);

}  // namespace leadflow::crm::domain
