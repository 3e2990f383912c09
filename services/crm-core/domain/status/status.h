#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm {

/// What reaching a lead status (or a deal stage) means (domain/common). PROCESS is open: inbound
/// traffic from the same person joins the record. SUCCESS and FAILURE close it. The statuses
/// themselves are rows of lead_statuses, configured by the business; only their semantics are
/// known to code.
using domain::ParseSemantics;
using domain::Semantics;
using domain::ToString;
inline bool IsOpen(Semantics semantics) { return semantics == Semantics::kProcess; }

/// The two configurable lists of StatusService: lead statuses and lead sources.
enum class StatusKind { kLeadStatus, kSource };

/// One lead status or source. Sources have no semantics.
struct StatusEntry {
  std::string id;
  std::string name;
  int sort = 0;
  std::optional<Semantics> semantics;
  bool system = false;
};

/// "NEW", "WAITING_FOR_CALLBACK": upper-case letters, digits and underscores, starting with a
/// letter, at most 50 characters (the lead_statuses and lead_sources CHECK).
bool IsValidStatusId(std::string_view id);

/// Whether `candidate` may join `existing` (the same kind): a valid new id, a name, semantics
/// for lead statuses and none for sources, and never a second SUCCESS status.
absl::Status CheckNewStatus(StatusKind kind, const std::vector<StatusEntry>& existing,
                            const StatusEntry& candidate);

/// Whether `current` may take `changed`'s semantics (UpdateStatus): not a system status's, and
/// never a second SUCCESS.
absl::Status CheckSemanticsChange(const std::vector<StatusEntry>& existing,
                                  const StatusEntry& current, Semantics changed);

/// Whether `current`'s semantics may change while `records_using` leads have it: not at all. A
/// lead's being open or closed follows its status's semantics, so the change would open or close
/// every one of them at once, with no entry in their timelines and no new etag; they are moved
/// to another status first (each move a STATUS_CHANGED entry), as for DeleteStatus.
absl::Status CheckSemanticsInUse(const StatusEntry& current, Semantics changed,
                                 int64_t records_using);

/// Whether `status` may be deleted while `records_using` leads have it.
absl::Status CheckDeleteStatus(const StatusEntry& status, int64_t records_using);

/// Whether a lead may be given `status` by CreateLead or UpdateLead: not the SUCCESS status,
/// which only ConvertLead sets, together with the records a conversion produces
/// (FAILED_PRECONDITION "use ConvertLead"). Its semantics decide, not its id.
absl::Status CheckManualStatus(const StatusEntry& status);

/// The sort of a status created without one: after the last; a PROCESS lead status goes after
/// the last PROCESS status instead (between it and the first closed one, when there is room).
int NextSort(const std::vector<StatusEntry>& existing);
int NextSort(const std::vector<StatusEntry>& existing, std::optional<Semantics> semantics);

/// Names are unique in a list, compared as pipeline stage names are (naming's FoldForSearch:
/// "new" is "New"): ALREADY_EXISTS naming the entry that has it. `id` is the entry being named
/// (skipped), empty for a new one. A name of spaces is INVALID_ARGUMENT "name is blank", as a
/// stage's is: nothing to pick the entry by in a list.
absl::Status CheckStatusName(const std::vector<StatusEntry>& existing, std::string_view id,
                             std::string_view name);

/// Two entries of a list never share a sort (their order would be undefined): INVALID_ARGUMENT
/// naming the entry that has `sort`. `id` is the entry being placed (skipped).
absl::Status CheckStatusSort(const std::vector<StatusEntry>& existing, std::string_view id,
                             int sort);

/// Lead statuses read in sort order as a lead's path: every PROCESS (open) status before every
/// closed one (SUCCESS, FAILURE), as deal stages are. Checked for the entry `id` just created or
/// moved (an older misplacement elsewhere does not block it): FAILED_PRECONDITION naming the two
/// out of order. Sources have no semantics and no such rule.
absl::Status CheckStatusOrder(const std::vector<StatusEntry>& statuses, std::string_view id);

}  // namespace leadflow::crm
