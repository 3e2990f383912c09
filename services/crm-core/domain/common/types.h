#pragma once

// Vocabulary shared by every aggregate of the CRM domain. Plain C++: the text spellings below are
// the ones the schema (migrations/0004_domain.sql) stores and the API maps from its enums.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace leadflow::crm::domain {

/// What reaching a lead status or a deal stage means (common.proto's Semantics). A record in a
/// SUCCESS or FAILURE status/stage is closed.
enum class Semantics { kProcess, kSuccess, kFailure };

/// "PROCESS", "SUCCESS", "FAILURE".
std::string_view ToString(Semantics semantics);
std::optional<Semantics> ParseSemantics(std::string_view text);
inline bool IsClosed(Semantics semantics) { return semantics != Semantics::kProcess; }

/// The kinds of CRM record (common.proto's OwnerType).
enum class EntityKind { kLead, kContact, kCompany, kDeal };

/// "LEAD", "CONTACT", "COMPANY", "DEAL".
std::string_view ToString(EntityKind kind);
/// Lower case for messages: "lead", "contact", …
std::string_view Noun(EntityKind kind);

struct EntityRef {
  EntityKind kind = EntityKind::kLead;
  int64_t id = 0;
  friend bool operator==(const EntityRef&, const EntityRef&) = default;
};

/// "contact 12".
std::string Describe(EntityRef ref);

/// A normalised way to reach a person (libs/identity normalises): PHONE in E.164, EMAIL
/// lower-cased, MESSENGER as "platform:user-id".
enum class IdentityKind { kPhone, kEmail, kMessenger };
std::string_view ToString(IdentityKind kind);

struct Identity {
  IdentityKind kind = IdentityKind::kPhone;
  std::string value;
  friend bool operator==(const Identity&, const Identity&) = default;
  friend auto operator<=>(const Identity&, const Identity&) = default;
};

/// Classic: inbound traffic makes leads, converted by hand. Simple: no leads; inbound traffic
/// makes contacts and deals directly (crm_settings.mode).
enum class CrmMode { kClassic, kSimple };

/// "CLASSIC", "SIMPLE" (crm_settings.mode).
std::string_view ToString(CrmMode mode);
std::optional<CrmMode> ParseCrmMode(std::string_view text);

}  // namespace leadflow::crm::domain
