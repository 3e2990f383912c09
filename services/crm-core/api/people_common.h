#pragma once

// What the contact, company, search and history services share: identities as the API takes
// them, the acting user, the last-name placeholder, history records of field changes.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/domain/people/people.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "leadflow/crm/v1/common.pb.h"
#include "leadflow/crm/v1/contact.pb.h"

namespace leadflow::crm {

/// At most this many phones, emails or messenger ids per record.
inline constexpr int kMaxIdentitiesPerKind = 50;

/// Phones (any format, `default_region` without a country code → E.164), emails (lower-cased)
/// and messenger ids ("platform:user-id", platform lower-cased), deduplicated; INVALID_ARGUMENT
/// naming the field and the value that cannot be read.
absl::StatusOr<std::vector<IdentityKey>> NormalizeIdentities(
    const google::protobuf::RepeatedPtrField<std::string>& phones,
    const google::protobuf::RepeatedPtrField<std::string>& emails,
    const google::protobuf::RepeatedPtrField<std::string>& messengers,
    const std::string& default_region);

/// One messenger id normalised: "Telegram : 123" → "telegram:123".
absl::StatusOr<std::string> NormalizeMessenger(const std::string& raw);

/// The user a call acts for, from the optional "x-leadflow-user-id" metadata (0: none given):
/// recorded as "who" in history. INVALID_ARGUMENT when it is not an id.
absl::StatusOr<int64_t> ActingUser(grpc::CallbackServerContext* context);
/// FAILED_PRECONDITION unless `user_id` is 0 or an active user.
absl::Status CheckActiveUser(pqxx::transaction_base& work, int64_t user_id,
                             const std::string& field);

/// crm_settings.last_name_placeholder (the domain default when the row is absent).
std::string LastNamePlaceholder(pqxx::transaction_base& work);

/// The values of one kind ("PHONE") among `keys`, comma-separated: how history shows a set.
std::string JoinIdentities(const std::vector<IdentityKey>& keys, const std::string& kind);

/// Appends FIELD_CHANGED to `out` when `old_value` differs from `new_value`.
void RecordChange(std::vector<HistoryRecord>& out, const std::string& type, int64_t id,
                  int64_t user_id, const std::string& field, const std::string& old_value,
                  const std::string& new_value);

/// Links (or re-roles) contact ↔ company in its own transaction, with LINKED history on both
/// sides (FIELD_CHANGED "role" when only the role changed). Either side may call it.
absl::Status LinkContactCompany(pqxx::connection& connection, grpc::CallbackServerContext* context,
                                int64_t contact_id, int64_t company_id, const std::string& role,
                                v1::ContactCompanyLink* out);
/// NOT_FOUND when the pair is not linked; UNLINKED history on both sides.
absl::Status UnlinkContactCompany(pqxx::connection& connection,
                                  grpc::CallbackServerContext* context, int64_t contact_id,
                                  int64_t company_id);

struct MergeDone {
  std::vector<int64_t> folded;  // folded by this call (none on a retry)
};
/// MergeContacts, MergeCompanies, MergeLeads: domain/merge's plan over the locked records, then
/// the fold, history and the merges rows in one transaction (committed here). A merge that would
/// leave the kept record over `max_identities` is refused (domain CheckMergedIdentities).
absl::StatusOr<MergeDone> MergeRecords(pqxx::connection& connection,
                                       grpc::CallbackServerContext* context, size_t max_identities,
                                       const std::string& type, int64_t kept_id,
                                       const std::vector<int64_t>& folded_ids);

/// "CONTACT" for OWNER_TYPE_CONTACT; empty for UNSPECIFIED.
std::string TypeName(v1::OwnerType type);
v1::OwnerType OwnerTypeOf(const std::string& type);

}  // namespace leadflow::crm
