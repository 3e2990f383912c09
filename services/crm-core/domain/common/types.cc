#include "crm-core/domain/common/types.h"

#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {

std::string_view ToString(Semantics semantics) {
  switch (semantics) {
    case Semantics::kProcess:
      return "PROCESS";
    case Semantics::kSuccess:
      return "SUCCESS";
    case Semantics::kFailure:
      return "FAILURE";
  }
  return "PROCESS";
}

std::optional<Semantics> ParseSemantics(std::string_view text) {
  if (text == "PROCESS") return Semantics::kProcess;
  if (text == "SUCCESS") return Semantics::kSuccess;
  if (text == "FAILURE") return Semantics::kFailure;
  return std::nullopt;
}

std::string_view ToString(EntityKind kind) {
  switch (kind) {
    case EntityKind::kLead:
      return "LEAD";
    case EntityKind::kContact:
      return "CONTACT";
    case EntityKind::kCompany:
      return "COMPANY";
    case EntityKind::kDeal:
      return "DEAL";
  }
  return "LEAD";
}

std::string_view Noun(EntityKind kind) {
  switch (kind) {
    case EntityKind::kLead:
      return "lead";
    case EntityKind::kContact:
      return "contact";
    case EntityKind::kCompany:
      return "company";
    case EntityKind::kDeal:
      return "deal";
  }
  return "record";
}

std::string Describe(EntityRef ref) { return Cat(Noun(ref.kind), " ", ref.id); }

std::string_view ToString(IdentityKind kind) {
  switch (kind) {
    case IdentityKind::kPhone:
      return "PHONE";
    case IdentityKind::kEmail:
      return "EMAIL";
    case IdentityKind::kMessenger:
      return "MESSENGER";
  }
  return "PHONE";
}

std::string_view ToString(CrmMode mode) { return mode == CrmMode::kSimple ? "SIMPLE" : "CLASSIC"; }

std::optional<CrmMode> ParseCrmMode(std::string_view text) {
  if (text == "CLASSIC") return CrmMode::kClassic;
  if (text == "SIMPLE") return CrmMode::kSimple;
  return std::nullopt;
}

}  // namespace leadflow::crm::domain
