#include "crm-core/domain/status/status.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace leadflow::crm {

bool IsValidStatusId(std::string_view id) {
  if (id.empty() || id.size() > 50 || id[0] < 'A' || id[0] > 'Z') {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

absl::Status CheckNewStatus(StatusKind kind, const std::vector<StatusEntry>& existing,
                            const StatusEntry& candidate) {
  if (!IsValidStatusId(candidate.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("status id '", candidate.id,
                     "' must be 1 to 50 upper-case letters, digits or underscores, starting with "
                     "a letter"));
  }
  if (candidate.name.empty()) {
    return absl::InvalidArgumentError("name is required");
  }
  if (kind == StatusKind::kLeadStatus && !candidate.semantics) {
    return absl::InvalidArgumentError("a lead status needs semantics: PROCESS, SUCCESS or FAILURE");
  }
  if (kind == StatusKind::kSource && candidate.semantics) {
    return absl::InvalidArgumentError("a lead source has no semantics");
  }
  for (const StatusEntry& status : existing) {
    if (status.id == candidate.id) {
      return absl::AlreadyExistsError(absl::StrCat("status '", candidate.id, "' exists already"));
    }
  }
  if (candidate.semantics == Semantics::kSuccess) {
    for (const StatusEntry& status : existing) {
      if (status.semantics == Semantics::kSuccess) {
        return absl::FailedPreconditionError(
            absl::StrCat("'", status.id, "' is the success status already; there is only one"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSemanticsChange(const std::vector<StatusEntry>& existing,
                                  const StatusEntry& current, Semantics changed) {
  if (current.semantics == changed) {
    return absl::OkStatus();
  }
  if (current.system) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", current.id, "' is a system status: its semantics cannot change"));
  }
  if (!current.semantics) {
    return absl::InvalidArgumentError("a lead source has no semantics");
  }
  if (changed == Semantics::kSuccess) {
    for (const StatusEntry& status : existing) {
      if (status.semantics == Semantics::kSuccess && status.id != current.id) {
        return absl::FailedPreconditionError(
            absl::StrCat("'", status.id, "' is the success status already; there is only one"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDeleteStatus(const StatusEntry& status, int64_t records_using) {
  if (status.system) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", status.id, "' is a system status and cannot be deleted"));
  }
  if (records_using > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", status.id, "' is in use by ", records_using, " record(s); move them first"));
  }
  return absl::OkStatus();
}

absl::Status CheckManualStatus(const StatusEntry& status) {
  if (status.semantics == Semantics::kSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", status.id,
                     "' is the conversion status and is only set by converting the lead: use "
                     "ConvertLead"));
  }
  return absl::OkStatus();
}

int NextSort(const std::vector<StatusEntry>& existing) {
  int sort = 0;
  for (const StatusEntry& status : existing) {
    sort = std::max(sort, status.sort);
  }
  return sort + 10;
}

}  // namespace leadflow::crm
