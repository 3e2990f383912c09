#include "crm-core/domain/pipeline/pipeline.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/domain/naming/naming.h"

namespace leadflow::crm::domain {
namespace {

std::string Trimmed(std::string_view text) { return std::string(TrimAscii(text)); }

// Stage ids in a list, each as a message quotes it.
auto QuotedFormatter() {
  return [](std::string* out, const std::string& id) { out->append(Quoted(id)); };
}

}  // namespace

std::string NameKey(std::string_view name) { return FoldForSearch(name); }

namespace {

absl::Status CheckName(std::string_view what, std::string_view name) {
  if (NameKey(name).empty()) return absl::InvalidArgumentError(Cat(what, " is blank"));
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        Cat(what, " is ", name.size(), " bytes long; at most ", kMaxNameLength));
  }
  return absl::OkStatus();
}

absl::Status CheckIdleDays(const std::optional<int>& idle_days, std::string_view stage_id) {
  if (idle_days && (*idle_days < 1 || *idle_days > kMaxIdleDays)) {
    return absl::InvalidArgumentError(Cat("stage ", Quoted(stage_id), ": idle_days ", *idle_days,
                                          " is not in 1..", kMaxIdleDays));
  }
  return absl::OkStatus();
}

// Only a deal in a PROCESS stage can be idle: one in the SUCCESS or a FAILURE stage is closed.
absl::Status CheckIdleSemantics(const std::optional<int>& idle_days, const Stage& stage) {
  if (idle_days && stage.semantics != Semantics::kProcess) {
    return absl::InvalidArgumentError(Cat("stage ", Quoted(stage.id), " is a ",
                                          ToString(stage.semantics),
                                          " stage: idle_days is for PROCESS stages only (a "
                                          "closed deal is never idle)"));
  }
  return absl::OkStatus();
}

void Renumber(Pipeline& pipeline) {
  int sort = 10;
  for (Stage& stage : pipeline.stages) {
    stage.sort = sort;
    sort += 10;
  }
}

size_t IndexOf(const Pipeline& pipeline, std::string_view stage_id) {
  for (size_t i = 0; i < pipeline.stages.size(); ++i) {
    if (pipeline.stages[i].id == stage_id) return i;
  }
  return pipeline.stages.size();
}

std::string Label(const Pipeline& pipeline) { return PipelineLabel(pipeline.id, pipeline.name); }

absl::Status StageNotFound(const Pipeline& pipeline, std::string_view stage_id) {
  return absl::NotFoundError(Cat("stage ", Quoted(stage_id), " not found in ", Label(pipeline)));
}

// The invariants that depend on the whole pipeline, with the code the caller chooses.
absl::Status CheckStructure(const Pipeline& pipeline, absl::StatusCode code) {
  auto error = [&](std::string message) {
    return absl::Status(code, Cat(Label(pipeline), ": ", message));
  };
  if (pipeline.stages.size() > kMaxStages) {
    return error(Cat("at most ", kMaxStages, " stages"));
  }
  int process = 0, success = 0, failure = 0;
  // 0: in the PROCESS stages, 1: at the SUCCESS stage, 2: in the FAILURE stages.
  int phase = 0;
  for (const Stage& stage : pipeline.stages) {
    int stage_phase = stage.semantics == Semantics::kProcess   ? 0
                      : stage.semantics == Semantics::kSuccess ? 1
                                                               : 2;
    if (stage_phase < phase) {
      return error(Cat("stage ", Quoted(stage.id), " (", ToString(stage.semantics),
                       ") comes after a later kind of stage; the order is PROCESS "
                       "stages, then the SUCCESS stage, then the FAILURE stages"));
    }
    phase = stage_phase;
    (stage.semantics == Semantics::kProcess   ? process
     : stage.semantics == Semantics::kSuccess ? success
                                              : failure)++;
  }
  if (process == 0) return error("needs at least one PROCESS stage");
  if (success != 1) return error(Cat("needs exactly one SUCCESS stage, has ", success));
  if (failure == 0) return error("needs at least one FAILURE stage");
  return absl::OkStatus();
}

absl::Status CheckUnique(const Pipeline& pipeline, absl::StatusCode code) {
  std::set<std::string> ids, names;
  for (const Stage& stage : pipeline.stages) {
    if (!ids.insert(stage.id).second) {
      return absl::Status(code, Cat(Label(pipeline), " has two stages with id ", Quoted(stage.id)));
    }
    if (!names.insert(NameKey(stage.name)).second) {
      return absl::Status(code, Cat(Label(pipeline), " has two stages named ", Quoted(stage.name)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStage(const Stage& stage) {
  // The same rule as lead status ids (domain/common/errors.h); stages made before it keep their
  // ids (docs/domain.md, "Stage ids").
  if (absl::Status id = CheckConfiguredId("stage id", stage.id); !id.ok()) return id;
  if (absl::Status s = CheckName(Cat("the name of stage ", Quoted(stage.id)), stage.name);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckIdleDays(stage.idle_days, stage.id); !s.ok()) return s;
  return CheckIdleSemantics(stage.idle_days, stage);
}

}  // namespace

absl::Status Validate(const Pipeline& pipeline) {
  if (absl::Status s = CheckName("the pipeline name", pipeline.name); !s.ok()) return s;
  for (const Stage& stage : pipeline.stages) {
    if (absl::Status s = CheckStage(stage); !s.ok()) return s;
  }
  if (absl::Status s = CheckUnique(pipeline, absl::StatusCode::kInvalidArgument); !s.ok()) {
    return s;
  }
  return CheckStructure(pipeline, absl::StatusCode::kInvalidArgument);
}

const Stage* FindStage(const Pipeline& pipeline, std::string_view stage_id) {
  size_t index = IndexOf(pipeline, stage_id);
  return index < pipeline.stages.size() ? &pipeline.stages[index] : nullptr;
}

const Stage& FirstStage(const Pipeline& pipeline) { return pipeline.stages.front(); }

Pipeline DefaultPipeline(int64_t id, std::string name) {
  Pipeline pipeline{.id = id, .name = std::move(name), .stages = {}};
  auto add = [&](std::string stage_id, std::string stage_name, Semantics semantics) {
    pipeline.stages.push_back(Stage{.id = std::move(stage_id),
                                    .name = std::move(stage_name),
                                    .sort = 0,
                                    .semantics = semantics,
                                    .idle_days = std::nullopt});
  };
  add("NEW", "New", Semantics::kProcess);
  add("PREPARATION", "Preparation of documents", Semantics::kProcess);
  add("PREPAYMENT_INVOICE", "Invoice", Semantics::kProcess);
  add("EXECUTING", "In progress", Semantics::kProcess);
  add("FINAL_INVOICE", "Final invoice", Semantics::kProcess);
  add("WON", "Won", Semantics::kSuccess);
  add("LOSE", "Lost", Semantics::kFailure);
  Renumber(pipeline);
  return pipeline;
}

absl::StatusOr<Pipeline> AddStage(const Pipeline& pipeline, Stage stage,
                                  std::string_view before_stage_id) {
  if (absl::Status s = CheckStage(stage); !s.ok()) return s;
  if (stage.semantics == Semantics::kSuccess) {
    return absl::FailedPreconditionError(
        Cat(Label(pipeline), " has its SUCCESS stage already; a pipeline has exactly one"));
  }
  if (pipeline.stages.size() >= kMaxStages) {
    return absl::FailedPreconditionError(
        Cat(Label(pipeline), " has ", kMaxStages, " stages, the most it may"));
  }
  if (FindStage(pipeline, stage.id) != nullptr) {
    return absl::AlreadyExistsError(Cat(Label(pipeline), " has a stage with id ", stage.id));
  }
  const std::string key = NameKey(stage.name);
  for (const Stage& existing : pipeline.stages) {
    if (NameKey(existing.name) == key) {
      return absl::AlreadyExistsError(Cat(Label(pipeline), " has a stage named ",
                                          Quoted(existing.name), " (", existing.id, ")"));
    }
  }
  Pipeline next = pipeline;
  size_t position;
  if (!before_stage_id.empty()) {
    position = IndexOf(pipeline, before_stage_id);
    if (position == pipeline.stages.size()) return StageNotFound(pipeline, before_stage_id);
    if (pipeline.stages[position].semantics != stage.semantics) {
      return absl::InvalidArgumentError(
          Cat("a ", ToString(stage.semantics), " stage cannot go before ", Quoted(before_stage_id),
              ", a ", ToString(pipeline.stages[position].semantics), " stage"));
    }
  } else if (stage.semantics == Semantics::kProcess) {
    position = 0;
    while (position < pipeline.stages.size() &&
           pipeline.stages[position].semantics == Semantics::kProcess) {
      ++position;
    }
  } else {
    position = pipeline.stages.size();
  }
  next.stages.insert(next.stages.begin() + static_cast<ptrdiff_t>(position), std::move(stage));
  Renumber(next);
  if (absl::Status s = CheckStructure(next, absl::StatusCode::kFailedPrecondition); !s.ok()) {
    return s;
  }
  return next;
}

absl::StatusOr<Pipeline> UpdateStage(const Pipeline& pipeline, std::string_view stage_id,
                                     const StageUpdate& update) {
  size_t index = IndexOf(pipeline, stage_id);
  if (index == pipeline.stages.size()) return StageNotFound(pipeline, stage_id);
  Pipeline next = pipeline;
  Stage& stage = next.stages[index];
  if (update.name) {
    if (absl::Status s = CheckName(Cat("the name of stage ", Quoted(stage_id)), *update.name);
        !s.ok()) {
      return s;
    }
    stage.name = Trimmed(*update.name);
    const std::string key = NameKey(stage.name);
    for (const Stage& other : pipeline.stages) {
      if (other.id != stage.id && NameKey(other.name) == key) {
        return absl::AlreadyExistsError(Cat(Label(pipeline), " has a stage named ",
                                            Quoted(other.name), " (", other.id, ") already"));
      }
    }
  }
  if (update.idle_days) {
    if (absl::Status s = CheckIdleDays(*update.idle_days, stage_id); !s.ok()) return s;
    if (absl::Status s = CheckIdleSemantics(*update.idle_days, stage); !s.ok()) return s;
    stage.idle_days = *update.idle_days;
  }
  if (absl::Status s = CheckUnique(next, absl::StatusCode::kAlreadyExists); !s.ok()) return s;
  return next;
}

absl::StatusOr<Pipeline> ReorderStages(const Pipeline& pipeline,
                                       const std::vector<std::string>& process_stage_ids) {
  std::vector<std::string> current;
  for (const Stage& stage : pipeline.stages) {
    if (stage.semantics == Semantics::kProcess) current.push_back(stage.id);
  }
  std::vector<std::string> given = process_stage_ids;
  std::vector<std::string> sorted_current = current;
  std::sort(given.begin(), given.end());
  std::sort(sorted_current.begin(), sorted_current.end());
  if (given != sorted_current) {
    return absl::InvalidArgumentError(
        Cat("the new order must name each PROCESS stage of ", Label(pipeline), " exactly once (",
            absl::StrJoin(current, ", ", QuotedFormatter()), "); got ",
            absl::StrJoin(process_stage_ids, ", ", QuotedFormatter())));
  }
  Pipeline next = pipeline;
  for (size_t i = 0; i < process_stage_ids.size(); ++i) {
    next.stages[i] = *FindStage(pipeline, process_stage_ids[i]);
  }
  Renumber(next);
  return next;
}

absl::StatusOr<Pipeline> RemoveStage(const Pipeline& pipeline, std::string_view stage_id,
                                     int64_t deals_in_stage) {
  size_t index = IndexOf(pipeline, stage_id);
  if (index == pipeline.stages.size()) return StageNotFound(pipeline, stage_id);
  if (deals_in_stage > 0) {
    return absl::FailedPreconditionError(
        Cat("stage ", Quoted(stage_id), " of ", Label(pipeline), " still holds ", deals_in_stage,
            deals_in_stage == 1 ? " deal" : " deals", "; move them to another stage first"));
  }
  Pipeline next = pipeline;
  next.stages.erase(next.stages.begin() + static_cast<ptrdiff_t>(index));
  Renumber(next);
  if (absl::Status s = CheckStructure(next, absl::StatusCode::kFailedPrecondition); !s.ok()) {
    return absl::FailedPreconditionError(
        Cat("cannot remove stage ", Quoted(stage_id), ": ", s.message()));
  }
  return next;
}

absl::StatusOr<Pipeline> RenamePipeline(const Pipeline& pipeline, std::string_view name) {
  if (absl::Status s = CheckName("the pipeline name", name); !s.ok()) return s;
  Pipeline next = pipeline;
  next.name = Trimmed(name);
  return next;
}

}  // namespace leadflow::crm::domain
