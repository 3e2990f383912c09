#pragma once

// A deal pipeline (Bitrix24's deal category) and its ordered stages, with the invariants every
// pipeline keeps and the edits a manager makes. Each edit returns the new pipeline or an
// absl::Status whose code the API returns as is:
//   INVALID_ARGUMENT     the request itself is malformed (blank name, bad id, not a permutation);
//   NOT_FOUND            it names a stage the pipeline does not have;
//   ALREADY_EXISTS       a stage with that id or name exists already;
//   FAILED_PRECONDITION  well-formed, but refused in the pipeline's current state (a second
//                        SUCCESS stage, removing the last FAILURE stage, deals in the stage, …).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm::domain {

inline constexpr size_t kMaxStages = 50;
inline constexpr size_t kMaxNameLength = kMaxLabelBytes;  // bytes, pipeline and stage names
inline constexpr size_t kMaxStageIdLength = kMaxConfiguredIdLength;  // as a status id
inline constexpr int kMaxIdleDays = 3650;

struct Stage {
  /// Unique within its pipeline (the same id may exist in another pipeline): "NEW", "WON".
  std::string id;
  std::string name;
  /// Position, rewritten by every edit as 10, 20, 30, … in stage order (Bitrix24's SORT).
  int sort = 0;
  Semantics semantics = Semantics::kProcess;
  /// A deal sitting in this stage longer than this without activity is idle ("rotting").
  std::optional<int> idle_days;
  friend bool operator==(const Stage&, const Stage&) = default;
};

/// Stages are held in order. The order invariant: every PROCESS stage, then the one SUCCESS
/// stage, then the FAILURE stages (Bitrix24 keeps the final stages last), so "the first stage"
/// (where new deals start) is always a PROCESS stage.
struct Pipeline {
  int64_t id = 0;
  std::string name;
  std::vector<Stage> stages;
  friend bool operator==(const Pipeline&, const Pipeline&) = default;
};

/// The one rule saying when two pipeline names, or two stage names of a pipeline, are the same
/// name: equal keys. The key is naming's FoldForSearch — Unicode case folding, accents removed
/// (composed or not: "Négociation", "NEGOCIATION", "Ne\u0301gociation"), compatibility forms
/// unified, whitespace runs (tabs, no-break spaces) collapsed and the ends trimmed. Only C++
/// applies it (the schema has no unique index of its own on names since 0007, so the database
/// can never disagree with it); an empty key is a blank name.
std::string NameKey(std::string_view name);

/// All invariants: name non-blank and at most kMaxNameLength; 3 to kMaxStages stages; stage ids
/// well-formed and unique; stage names non-blank, at most kMaxNameLength and unique (by
/// NameKey); idle_days in 1..kMaxIdleDays; at least one PROCESS, exactly one SUCCESS and at
/// least one FAILURE stage, in the order above. Violations are INVALID_ARGUMENT (for a pipeline
/// given whole, as CreatePipeline does).
absl::Status Validate(const Pipeline& pipeline);

/// The stage with that id, or nullptr.
const Stage* FindStage(const Pipeline& pipeline, std::string_view stage_id);

/// Where new deals start: the first stage (always PROCESS in a valid pipeline).
const Stage& FirstStage(const Pipeline& pipeline);

/// Bitrix24's default deal stages: New, Preparation of documents, Invoice, In progress, Final
/// invoice (PROCESS); Won (SUCCESS); Lost (FAILURE) — ids NEW, PREPARATION, PREPAYMENT_INVOICE,
/// EXECUTING, FINAL_INVOICE, WON, LOSE. Also the stages a new pipeline gets when created
/// without any. migrations/0004_domain.sql seeds the same as pipeline 1, "Sales".
Pipeline DefaultPipeline(int64_t id = 1, std::string name = "Sales");

/// Adds a stage. A PROCESS stage goes before `before_stage_id` (a PROCESS stage) or, when that is
/// empty, after the last PROCESS stage; a FAILURE stage goes after the last stage (or before the
/// FAILURE stage named). A second SUCCESS stage is FAILED_PRECONDITION.
absl::StatusOr<Pipeline> AddStage(const Pipeline& pipeline, Stage stage,
                                  std::string_view before_stage_id = "");

/// What UpdateStage changes; unset members stay. Semantics cannot change: that would close or
/// reopen every deal in the stage behind the managers' backs — add a stage and move deals instead.
struct StageUpdate {
  std::optional<std::string> name;
  /// Set to std::nullopt inside to clear the idle threshold.
  std::optional<std::optional<int>> idle_days;
};
absl::StatusOr<Pipeline> UpdateStage(const Pipeline& pipeline, std::string_view stage_id,
                                     const StageUpdate& update);

/// Reorders the PROCESS stages: `process_stage_ids` must be a permutation of them (the final
/// stages keep their places at the end).
absl::StatusOr<Pipeline> ReorderStages(const Pipeline& pipeline,
                                       const std::vector<std::string>& process_stage_ids);

/// Removes a stage; refused (FAILED_PRECONDITION) while `deals_in_stage` > 0, and when it would
/// leave the pipeline without a PROCESS, SUCCESS or FAILURE stage.
absl::StatusOr<Pipeline> RemoveStage(const Pipeline& pipeline, std::string_view stage_id,
                                     int64_t deals_in_stage);

/// Renames the pipeline (INVALID_ARGUMENT when blank or too long).
absl::StatusOr<Pipeline> RenamePipeline(const Pipeline& pipeline, std::string_view name);

}  // namespace leadflow::crm::domain
