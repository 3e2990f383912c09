#include "crm-core/model.h"

#include <array>
#include <utility>

namespace leadflow::crm {
namespace {

constexpr std::array<std::pair<LeadStatus, std::string_view>, 5> kStatusNames = {{
    {LeadStatus::kNew, "NEW"},
    {LeadStatus::kInProcess, "IN_PROCESS"},
    {LeadStatus::kProcessed, "PROCESSED"},
    {LeadStatus::kJunk, "JUNK"},
    {LeadStatus::kConverted, "CONVERTED"},
}};

}  // namespace

std::string_view ToString(LeadStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) {
      return name;
    }
  }
  return "NEW";
}

std::optional<LeadStatus> ParseLeadStatus(std::string_view text) {
  for (const auto& [value, name] : kStatusNames) {
    if (name == text) {
      return value;
    }
  }
  return std::nullopt;
}

std::string IdentityLockKey(const IdentityKey& key) { return key.kind + ":" + key.value; }

}  // namespace leadflow::crm
