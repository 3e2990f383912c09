#pragma once

// What the contact, company, search and history services share: identities as the API takes
// them, the acting user, the last-name placeholder, history records of field changes, and the
// calls contacts and companies answer alike (read, create, update, delete, merge), written once
// over PeopleKind<Record>.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/domain/people/people.h"
#include "crm-core/store/people_repository.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "leadflow/crm/v1/common.pb.h"
#include "leadflow/crm/v1/company.pb.h"
#include "leadflow/crm/v1/contact.pb.h"
#include "metrics/metrics.h"

namespace leadflow::crm {

/// At most this many links of each kind shown inline in a Contact (companies, deal_ids) or a
/// Company (contacts, deal_ids), the first by id; the *_count fields give them all, and the List
/// methods page through them (ListContacts company_id, ListCompanies contact_id, ListDeals
/// contact_id/company_id). A company with 500 contacts is one answer of bounded size.
inline constexpr size_t kMaxInlineLinks = 100;

/// Phones (any format, `default_region` without a country code → E.164), emails (lower-cased)
/// and messenger ids ("platform:user-id", platform lower-cased), deduplicated, at most
/// domain::kMaxIdentitiesPerKind of each; INVALID_ARGUMENT
/// naming the field, the index and the value that cannot be read (IdentityValueError).
absl::StatusOr<std::vector<IdentityKey>> NormalizeIdentities(
    const google::protobuf::RepeatedPtrField<std::string>& phones,
    const google::protobuf::RepeatedPtrField<std::string>& emails,
    const google::protobuf::RepeatedPtrField<std::string>& messengers,
    const std::string& default_region);

/// INVALID_ARGUMENT naming one identity a request cannot use and why:
/// `phones[2] "06 12": not a valid phone number` (the value quoted with domain::Quoted), so that a
/// caller sending several phones, emails or messenger ids knows which one to fix.
absl::Status IdentityValueError(const std::string& field, int index, const std::string& raw,
                                const absl::Status& reason);

/// One email address normalised (lower-cased), read from a "mailto:" link too ("mailto:Lea@x.fr"
/// and "mailto:lea@x.fr?subject=Devis" are lea@x.fr), as a manager pastes it from a page or a
/// signature; anything else that is not an address is INVALID_ARGUMENT.
absl::StatusOr<std::string> NormalizeEmailAddress(const std::string& raw);

/// One messenger id normalised: "Telegram : 123" → "telegram:123".
absl::StatusOr<std::string> NormalizeMessenger(const std::string& raw);

/// The user a write acts for (0: none given), as RunCall resolved and checked it from the
/// optional "x-leadflow-user-id" metadata: recorded as "who" in history.
absl::StatusOr<int64_t> ActingUser(grpc::CallbackServerContext* context);
/// FAILED_PRECONDITION unless `user_id` is 0 or an active user.
absl::Status CheckActiveUser(pqxx::transaction_base& work, int64_t user_id,
                             const std::string& field);

/// Who work left to a record's responsible goes to: `responsible` while that user is active (or
/// 0, nobody); for a deactivated one, the user the call acts for (ActingUserScope), or nobody
/// without one. Nothing the API writes is given to a user who can no longer work it
/// (docs/domain.md, "Who gets what a conversion creates"): ConvertLead's new records and
/// activities planned without a responsible.
int64_t WorkingResponsible(pqxx::transaction_base& work, int64_t responsible);

/// INVALID_ARGUMENT naming `source_id` unless it is empty or a lead source's id (as
/// StatusService/ListStatuses spells it, "WEB_FORM"): checked before writing, where the foreign
/// key's refusal told the caller nothing.
absl::Status CheckSourceId(pqxx::transaction_base& work, const std::string& source_id);

/// crm_settings.last_name_placeholder (the domain default when the row is absent).
std::string LastNamePlaceholder(pqxx::transaction_base& work);

/// The values of one kind ("PHONE") among `keys`, comma-separated: how history shows a set.
std::string JoinIdentities(const std::vector<IdentityKey>& keys, const std::string& kind);

/// Appends FIELD_CHANGED to `out` when `old_value` differs from `new_value`.
void RecordChange(std::vector<HistoryRecord>& out, const std::string& type, int64_t id,
                  int64_t user_id, const std::string& field, const std::string& old_value,
                  const std::string& new_value);

/// Links (or re-roles) contact ↔ company in its own transaction, with LINKED history on both
/// sides (LINKED with field "role" when only the role changed). Either side may call it. `role`
/// unset: a new link has none and an existing one keeps its own; set (even empty): the role.
absl::Status LinkContactCompany(pqxx::connection& connection, grpc::CallbackServerContext* context,
                                int64_t contact_id, int64_t company_id,
                                const std::optional<std::string>& role,
                                v1::ContactCompanyLink* out);
/// NOT_FOUND when the pair is not linked; UNLINKED history on both sides.
absl::Status UnlinkContactCompany(pqxx::connection& connection,
                                  grpc::CallbackServerContext* context, int64_t contact_id,
                                  int64_t company_id);

struct MergeDone {
  std::vector<int64_t> folded;     // folded by this call (none on a retry)
  int64_t recordings_dropped = 0;  // left out past the cap by call-backs folded into the kept one
  // More links moved than the kept record's timeline lists one by one (the rest are counted in
  // one summary entry).
  bool links_summarised = false;
};

/// Counts a merge whose moved links passed the timeline's bound in `family` (when given), under
/// the entity kind `type` (CONTACT, COMPANY, LEAD).
void CountSummarisedMerge(metrics::Family<metrics::Counter>* family, const std::string& type,
                          const MergeDone& done);
/// MergeContacts, MergeCompanies, MergeLeads: domain/merge's plan over the locked records, then
/// the fold, history and the merges rows in one transaction (committed here). A merge that would
/// leave the kept record over `max_identities` is refused (domain CheckMergedIdentities). The
/// recordings its call-back fold left out are added to `recordings_dropped` once committed.
absl::StatusOr<MergeDone> MergeRecords(pqxx::connection& connection,
                                       grpc::CallbackServerContext* context, size_t max_identities,
                                       const std::string& type, int64_t kept_id,
                                       const std::vector<int64_t>& folded_ids,
                                       metrics::Counter* recordings_dropped = nullptr);
/// The same for `acting_user` (0: none), for callers outside a gRPC call.
absl::StatusOr<MergeDone> MergeRecords(pqxx::connection& connection, int64_t acting_user,
                                       size_t max_identities, const std::string& type,
                                       int64_t kept_id, const std::vector<int64_t>& folded_ids,
                                       metrics::Counter* recordings_dropped = nullptr);

/// "CONTACT" for OWNER_TYPE_CONTACT; empty for UNSPECIFIED.
std::string TypeName(v1::OwnerType type);
v1::OwnerType OwnerTypeOf(const std::string& type);

// ---- Contacts and companies alike ----

/// What differs between a contact and a company for the calls below.
template <class Record>
struct PeopleKind;

template <>
struct PeopleKind<Contact> {
  using Repository = ContactRepository;
  using Proto = v1::Contact;
  static constexpr const char* kType = "CONTACT";  // history and merges
  static constexpr const char* kNoun = "contact";  // error messages
  static constexpr domain::EntityKind kKind = domain::EntityKind::kContact;
  static constexpr const char* kLinkedType = "COMPANY";
  static const std::vector<CompanyLink>& Links(const Contact& record) { return record.companies; }
  static int64_t LinkedId(const CompanyLink& link) { return link.company_id; }
};

template <>
struct PeopleKind<Company> {
  using Repository = CompanyRepository;
  using Proto = v1::Company;
  static constexpr const char* kType = "COMPANY";
  static constexpr const char* kNoun = "company";
  static constexpr domain::EntityKind kKind = domain::EntityKind::kCompany;
  static constexpr const char* kLinkedType = "CONTACT";
  static const std::vector<CompanyLink>& Links(const Company& record) { return record.contacts; }
  static int64_t LinkedId(const CompanyLink& link) { return link.contact_id; }
};

void ToProto(const Contact& contact, v1::Contact* out);
void ToProto(const Company& company, v1::Company* out);

/// A live record, or NOT_FOUND (naming the kept record when it was merged away). `lock`: FOR
/// UPDATE.
template <class Record>
absl::StatusOr<Record> LiveRecord(pqxx::transaction_base& work, int64_t id, bool lock = false);

/// The live record `id` into `out`.
template <class Record>
absl::Status LoadRecord(pqxx::transaction_base& work, int64_t id,
                        typename PeopleKind<Record>::Proto* out);

/// CheckText over `fields`, and at most domain::kMaxNameBytes for those among them that are in
/// `bounded` (names and short labels).
absl::Status CheckPeopleText(std::initializer_list<std::pair<const char*, std::string>> fields,
                             const std::set<std::string>& bounded);

/// The end of a Create: the responsible and acting users must be active; under the identity
/// locks the inbound consumer takes, either the oldest record already holding one of `keys`'
/// phones or emails (with `upsert`: outcome EXISTING; `keys` it lacks are added to it, see
/// AddIdentities) or `row` inserted with its identities and a CREATED history line (outcome
/// CREATED). Committed either way.
template <class Record>
absl::Status InsertRecord(pqxx::work& work, int64_t user, const Record& row,
                          const std::vector<IdentityKey>& keys, bool upsert, size_t max_identities,
                          v1::UpsertOutcome* outcome, typename PeopleKind<Record>::Proto* out);

/// Adds to contact or company `id` the `keys` it does not hold (their locks held by the caller),
/// with FIELD_CHANGED history (phones, emails, messengers) and a new etag. FAILED_PRECONDITION,
/// nothing written, when it would then hold more than `max_identities` (the inbound cap): a
/// phone or email the caller sent is never dropped silently.
template <class Record>
absl::Status AddIdentities(pqxx::transaction_base& work, int64_t id,
                           const std::vector<IdentityKey>& keys, int64_t user,
                           size_t max_identities);

/// One person, one record (docs/domain.md, "One person, one record"): FAILED_PRECONDITION,
/// naming each record and what it holds, when a record of `kind` other than `self_id` (0: none)
/// holds one of `keys` — a contact or company not merged away; for leads, an open one (a closed
/// lead is the person's past, which a returning lead is linked to). `what_to_do` ends the
/// message. Every write that gives a record identities calls it (Create, Update, the upserts,
/// ConvertLead), under the identity locks of `keys`, so that a concurrent inbound batch or call
/// holding one of them is seen.
absl::Status RefuseIdentitiesHeldElsewhere(pqxx::transaction_base& work, domain::EntityKind kind,
                                           int64_t self_id, const std::vector<IdentityKey>& keys,
                                           const std::string& what_to_do);

/// Records one field change for history when the values differ.
using ChangeFn = std::function<void(const std::string& field, const std::string& old_value,
                                    const std::string& new_value)>;
/// The fields only one kind has, set on `next` when `has(path)` (and recorded through `change`).
template <class Record>
using ApplyFieldsFn =
    std::function<void(pqxx::transaction_base& work, const std::function<bool(const char*)>& has,
                       const Record& current, Record& next, const ChangeFn& change)>;

/// An Update after the mask and the text were checked: the etag, the acting and responsible
/// users, the kind's own fields (`apply`), then responsible_user_id, source_id, comments and the
/// identities (replaced per kind named in the mask, under their locks), with a FIELD_CHANGED
/// history line per changed field; ABORTED when the record changed since its etag or meanwhile.
template <class Record>
absl::Status UpdateRecord(pqxx::connection& connection, grpc::CallbackServerContext* context,
                          const typename PeopleKind<Record>::Proto& in,
                          const std::set<std::string>& paths, const std::string& default_region,
                          const ApplyFieldsFn<Record>& apply,
                          typename PeopleKind<Record>::Proto* response);

/// Delete: the etag if given, DELETED history on the record and UNLINKED on each linked one.
template <class Record>
absl::Status DeleteRecord(pqxx::connection& connection, grpc::CallbackServerContext* context,
                          int64_t id, const std::string& etag);

/// MergeRecords, then the kept record and the ids this call folded into `response`.
template <class Record, class Response>
absl::Status MergeAndLoad(pqxx::connection& connection, grpc::CallbackServerContext* context,
                          size_t max_identities, int64_t kept_id,
                          const google::protobuf::RepeatedField<int64_t>& folded,
                          metrics::Family<metrics::Counter>* summarised, Response* response,
                          metrics::Counter* recordings_dropped = nullptr) {
  std::vector<int64_t> ids(folded.begin(), folded.end());
  auto done = MergeRecords(connection, context, max_identities, PeopleKind<Record>::kType, kept_id,
                           ids, recordings_dropped);
  if (!done.ok()) {
    return done.status();
  }
  CountSummarisedMerge(summarised, PeopleKind<Record>::kType, *done);
  for (int64_t id : done->folded) {
    response->add_folded_ids(id);
  }
  pqxx::read_transaction work(connection);
  return LoadRecord<Record>(work, kept_id, response->mutable_kept());
}

}  // namespace leadflow::crm
