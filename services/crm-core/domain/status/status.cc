#include "crm-core/domain/status/status.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/naming/naming.h"

namespace leadflow::crm {

bool IsValidStatusId(std::string_view id) { return domain::IsValidConfiguredId(id); }

absl::Status CheckNewStatus(StatusKind kind, const std::vector<StatusEntry>& existing,
                            const StatusEntry& candidate) {
  if (absl::Status id = domain::CheckConfiguredId("status id", candidate.id); !id.ok()) {
    return id;
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
      return absl::AlreadyExistsError(
          absl::StrCat("status ", domain::Quoted(candidate.id), " exists already"));
    }
  }
  if (candidate.semantics == Semantics::kSuccess) {
    for (const StatusEntry& status : existing) {
      if (status.semantics == Semantics::kSuccess) {
        return absl::FailedPreconditionError(absl::StrCat(
            domain::Quoted(status.id), " is the success status already; there is only one"));
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
    return absl::FailedPreconditionError(absl::StrCat(
        domain::Quoted(current.id), " is a system status: its semantics cannot change"));
  }
  if (!current.semantics) {
    return absl::InvalidArgumentError("a lead source has no semantics");
  }
  if (changed == Semantics::kSuccess) {
    for (const StatusEntry& status : existing) {
      if (status.semantics == Semantics::kSuccess && status.id != current.id) {
        return absl::FailedPreconditionError(absl::StrCat(
            domain::Quoted(status.id), " is the success status already; there is only one"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSemanticsInUse(const StatusEntry& current, Semantics changed,
                                 int64_t records_using) {
  if (current.semantics == changed || records_using == 0) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat(domain::Quoted(current.id), " is in use by ", records_using,
                   " record(s): its semantics cannot change while leads hold it; move them first"));
}

absl::Status CheckDeleteStatus(const StatusEntry& status, int64_t records_using) {
  if (status.system) {
    return absl::FailedPreconditionError(
        absl::StrCat(domain::Quoted(status.id), " is a system status and cannot be deleted"));
  }
  if (records_using > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        domain::Quoted(status.id), " is in use by ", records_using, " record(s); move them first"));
  }
  return absl::OkStatus();
}

absl::Status CheckManualStatus(const StatusEntry& status) {
  if (status.semantics == Semantics::kSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat(domain::Quoted(status.id),
                     " is the conversion status and is only set by converting the lead: use "
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

int NextSort(const std::vector<StatusEntry>& existing, std::optional<Semantics> semantics) {
  if (semantics != Semantics::kProcess) {
    return NextSort(existing);
  }
  std::optional<int> last_open;
  std::optional<int> first_closed;
  for (const StatusEntry& status : existing) {
    if (status.semantics == Semantics::kProcess) {
      last_open = std::max(last_open.value_or(status.sort), status.sort);
    } else if (status.semantics) {
      first_closed = std::min(first_closed.value_or(status.sort), status.sort);
    }
  }
  if (!first_closed) {
    return NextSort(existing);
  }
  const int after = last_open.value_or(*first_closed - 20);
  // Halfway, on a multiple of 5 when there is room (20 and 30 → 25); no room: next to the last
  // open one, which CheckStatusOrder then refuses by name.
  const int middle = after + (*first_closed - after) / 2;
  return middle > after ? middle : after + 1;
}

absl::Status CheckStatusName(const std::vector<StatusEntry>& existing, std::string_view id,
                             std::string_view name) {
  const std::string key = domain::FoldForSearch(name);
  if (key.empty()) {
    return absl::InvalidArgumentError("name is blank");
  }
  for (const StatusEntry& status : existing) {
    if (status.id != id && domain::FoldForSearch(status.name) == key) {
      return absl::AlreadyExistsError(absl::StrCat(domain::Quoted(status.id), " is named ",
                                                   domain::Quoted(status.name), " already"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStatusSort(const std::vector<StatusEntry>& existing, std::string_view id,
                             int sort) {
  for (const StatusEntry& status : existing) {
    if (status.id != id && status.sort == sort) {
      return absl::InvalidArgumentError(
          absl::StrCat("sort ", sort, " is the sort of ", domain::Quoted(status.id),
                       " already; two entries never share one (their order would be undefined)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStatusOrder(const std::vector<StatusEntry>& statuses, std::string_view id) {
  const StatusEntry* placed = nullptr;
  for (const StatusEntry& status : statuses) {
    if (status.id == id) placed = &status;
  }
  if (placed == nullptr || !placed->semantics) {
    return absl::OkStatus();
  }
  const bool open = *placed->semantics == Semantics::kProcess;
  // The status it clashes with: the first closed one at or before an open status, the last open
  // one at or after a closed status.
  const StatusEntry* clash = nullptr;
  for (const StatusEntry& status : statuses) {
    if (!status.semantics || (*status.semantics == Semantics::kProcess) == open) {
      continue;
    }
    if (open ? status.sort <= placed->sort && (clash == nullptr || status.sort < clash->sort)
             : status.sort >= placed->sort && (clash == nullptr || status.sort > clash->sort)) {
      clash = &status;
    }
  }
  if (clash == nullptr) {
    return absl::OkStatus();
  }
  const StatusEntry& first = open ? *clash : *placed;
  const StatusEntry& second = open ? *placed : *clash;
  return absl::FailedPreconditionError(absl::StrCat(
      domain::Quoted(second.id), " (PROCESS, sort ", second.sort, ") would not come before ",
      domain::Quoted(first.id), " (", std::string(ToString(*first.semantics)), ", sort ",
      first.sort, "): open statuses come first, then the closed ones"));
}

}  // namespace leadflow::crm
