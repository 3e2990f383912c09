#include "crm-core/domain/activity/activity.h"

namespace leadflow::crm {

bool IsOwnerType(std::string_view owner_type) {
  return owner_type == "LEAD" || owner_type == "CONTACT" || owner_type == "COMPANY" ||
         owner_type == "DEAL";
}

}  // namespace leadflow::crm
