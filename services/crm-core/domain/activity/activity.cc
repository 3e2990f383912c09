#include "crm-core/domain/activity/activity.h"

#include "absl/strings/str_cat.h"

namespace leadflow::crm {

bool IsOwnerType(std::string_view owner_type) {
  return owner_type == "LEAD" || owner_type == "CONTACT" || owner_type == "COMPANY" ||
         owner_type == "DEAL";
}

absl::Status CheckActivityUpdate(const Activity& current, const std::set<std::string>& paths) {
  if (current.origin_event_id.empty()) {
    return absl::OkStatus();
  }
  for (const char* field : {"subject", "description"}) {
    if (paths.count(field) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "activity ", current.id, " was made by inbound event ", current.origin_event_id, ": its ",
          field,
          " says what came in and is kept as it came (deadline, responsible_user_id and "
          "completed may change)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace leadflow::crm
