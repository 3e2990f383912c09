#include "crm-core/api/people_common.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm-core/api/call_common.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/merge/merge.h"
#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"
#include "identity/identity.h"

namespace leadflow::crm {

namespace {

template <class Proto>
void IdentitiesToProto(const std::vector<IdentityKey>& identities, Proto* out) {
  for (const IdentityKey& key : identities) {
    if (key.kind == "PHONE") {
      out->add_phones(key.value);
    } else if (key.kind == "EMAIL") {
      out->add_emails(key.value);
    } else {
      out->add_messengers(key.value);
    }
  }
}

void LinkToProto(const CompanyLink& link, v1::ContactCompanyLink* out) {
  out->set_contact_id(link.contact_id);
  out->set_company_id(link.company_id);
  out->set_role(link.role);
  *out->mutable_create_time() = FromMicros(link.create_micros);
}

}  // namespace

absl::StatusOr<std::string> NormalizeMessenger(const std::string& raw) {
  std::string text(absl::StripAsciiWhitespace(raw));
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("not \"platform:user-id\" (e.g. telegram:123456)");
  }
  std::string platform(absl::StripAsciiWhitespace(text.substr(0, colon)));
  std::string user(absl::StripAsciiWhitespace(text.substr(colon + 1)));
  absl::AsciiStrToLower(&platform);
  if (platform.empty() || user.empty() || text.size() > domain::kMaxIdentityBytes ||
      !identity::IsValidUtf8(text)) {
    return absl::InvalidArgumentError(absl::StrCat("not \"platform:user-id\" (both parts, at most ",
                                                   domain::kMaxIdentityBytes, " bytes of UTF-8)"));
  }
  return absl::StrCat(platform, ":", user);
}

absl::StatusOr<std::string> NormalizeEmailAddress(const std::string& raw) {
  std::string text(absl::StripAsciiWhitespace(raw));
  const std::string scheme = "mailto:";
  if (text.size() > scheme.size() && absl::StartsWithIgnoreCase(text, scheme)) {
    text = text.substr(scheme.size());
    text = text.substr(0, text.find('?'));  // the link's headers (?subject=…)
  }
  return identity::NormalizeEmail(text);
}

absl::Status IdentityValueError(const std::string& field, int index, const std::string& raw,
                                const absl::Status& reason) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, "[", index, "] ", domain::Quoted(raw), ": ", reason.message()));
}

absl::StatusOr<std::vector<IdentityKey>> NormalizeIdentities(
    const google::protobuf::RepeatedPtrField<std::string>& phones,
    const google::protobuf::RepeatedPtrField<std::string>& emails,
    const google::protobuf::RepeatedPtrField<std::string>& messengers,
    const std::string& default_region) {
  for (const auto& [field, list] :
       {std::pair{"phones", &phones}, {"emails", &emails}, {"messengers", &messengers}}) {
    if (list->size() > domain::kMaxIdentitiesPerKind) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": at most ", domain::kMaxIdentitiesPerKind, " values, got ", list->size()));
    }
  }
  std::set<IdentityKey> seen;
  std::vector<IdentityKey> keys;
  auto add = [&](IdentityKey key) {
    if (seen.insert(key).second) {
      keys.push_back(std::move(key));
    }
  };
  for (int i = 0; i < phones.size(); ++i) {
    auto phone = identity::NormalizePhone(phones[i], default_region);
    if (!phone.ok()) {
      return IdentityValueError("phones", i, phones[i], phone.status());
    }
    add({"PHONE", *phone});
  }
  for (int i = 0; i < emails.size(); ++i) {
    auto email = NormalizeEmailAddress(emails[i]);
    if (!email.ok()) {
      return IdentityValueError("emails", i, emails[i], email.status());
    }
    add({"EMAIL", *email});
  }
  for (int i = 0; i < messengers.size(); ++i) {
    auto messenger = NormalizeMessenger(messengers[i]);
    if (!messenger.ok()) {
      return IdentityValueError("messengers", i, messengers[i], messenger.status());
    }
    add({"MESSENGER", *messenger});
  }
  return keys;
}

absl::StatusOr<int64_t> ActingUser(grpc::CallbackServerContext* /*context*/) {
  // RunCall read and checked the metadata once for the whole call (api/common/call.h).
  return ActingUserScope::Current();
}

absl::Status CheckActiveUser(pqxx::transaction_base& work, int64_t user_id,
                             const std::string& field) {
  if (user_id != 0 && !UserRepository(work).IsActive(user_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": user ", user_id, " not found or not active"));
  }
  return absl::OkStatus();
}

int64_t WorkingResponsible(pqxx::transaction_base& work, int64_t responsible) {
  if (responsible == 0 || UserRepository(work).IsActive(responsible)) {
    return responsible;
  }
  return ActingUserScope::Current();
}

std::string LastNamePlaceholder(pqxx::transaction_base& work) {
  pqxx::result rows = work.exec_prepared("last_name_placeholder");
  if (rows.empty()) {
    return std::string(domain::kDefaultLastNamePlaceholder);
  }
  return rows[0][0].as<std::string>();
}

std::string JoinIdentities(const std::vector<IdentityKey>& keys, const std::string& kind) {
  std::vector<std::string> values;
  for (const IdentityKey& key : keys) {
    if (key.kind == kind) {
      values.push_back(key.value);
    }
  }
  return absl::StrJoin(values, ", ");
}

absl::Status CheckSourceId(pqxx::transaction_base& work, const std::string& source_id) {
  if (!source_id.empty() && !StatusRepository(work, StatusKind::kSource).Exists(source_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown source_id ", domain::Quoted(source_id),
                     " (StatusService/ListStatuses lists the sources)"));
  }
  return absl::OkStatus();
}

void RecordChange(std::vector<HistoryRecord>& out, const std::string& type, int64_t id,
                  int64_t user_id, const std::string& field, const std::string& old_value,
                  const std::string& new_value) {
  if (old_value != new_value) {
    out.push_back(HistoryRecord{.entity_type = type,
                                .entity_id = id,
                                .kind = "FIELD_CHANGED",
                                .field = field,
                                .old_value = old_value,
                                .new_value = new_value,
                                .user_id = user_id});
  }
}

namespace {

// The two records of a link, live and held until the commit (HoldLive): a merge or a delete of
// either waits for the link (and then moves or removes it) or committed first, and the answer
// names where the record went (NOT_FOUND "merged into …", or "not found").
absl::Status CheckLinkable(pqxx::transaction_base& work, int64_t contact_id, int64_t company_id) {
  if (contact_id <= 0 || company_id <= 0) {
    return absl::InvalidArgumentError("contact_id and company_id are required");
  }
  if (absl::Status held = HoldLive(work, domain::EntityKind::kContact, contact_id); !held.ok()) {
    return held;
  }
  return HoldLive(work, domain::EntityKind::kCompany, company_id);
}

// A locked record as the merge plan reads it: where its chain of merges ends (a retry naming a
// record folded along a chain into the kept one is then a no-op), and what a converted lead
// produced (named in the refusal).
domain::MergeRecord ToMergeRecord(MergeRepository& merges, domain::EntityKind kind,
                                  const std::string& type, const MergeRepository::Locked& row,
                                  const std::map<int64_t, domain::Produced>& products) {
  domain::MergeRecord record{.kind = kind, .id = row.id, .converted = row.converted};
  if (row.merged_into != 0) {
    std::optional<MergeRepository::Owner> owner = merges.Find(type, row.id);
    record.merged_into = owner && owner->merged_into != 0 ? owner->merged_into : row.merged_into;
  }
  if (auto found = products.find(row.id); found != products.end()) {
    record.produced = found->second;
  }
  return record;
}

// The timeline of each deal a merge relinks: UNLINKED the folded contact (or company), LINKED
// the kept one unless it was on the deal already, as LinkContact/SetCompany write them. The deals
// the kept record gains go to `gained`.
std::vector<HistoryRecord> RelinkedDealsHistory(MergeRepository& merges, domain::EntityKind kind,
                                                int64_t kept_id,
                                                const std::vector<int64_t>& fold_ids, int64_t user,
                                                std::vector<int64_t>& gained) {
  std::vector<HistoryRecord> history;
  if (kind == domain::EntityKind::kLead) {
    return history;  // leads hold no deals
  }
  const std::string type(domain::ToString(kind));
  std::set<int64_t> linked;  // deals given LINKED the kept record already
  for (const MergeRepository::RelinkedDeal& deal : merges.RelinkedDeals(type, kept_id, fold_ids)) {
    auto entry = [&](const char* what, int64_t related) {
      history.push_back({.entity_type = "DEAL",
                         .entity_id = deal.deal_id,
                         .kind = what,
                         .related_type = type,
                         .related_id = related,
                         .user_id = user});
    };
    entry("UNLINKED", deal.folded_id);
    if (!deal.kept_linked && linked.insert(deal.deal_id).second) {
      entry("LINKED", kept_id);
      gained.push_back(deal.deal_id);
    }
  }
  return history;
}

// The kept record's own timeline after a merge shows what was moved to it (docs/domain.md,
// "Merge"): one LINKED entry per deal and per contact ↔ company link it gained, and on the other
// side of each such link UNLINKED the folded record and LINKED the kept one, as LinkContact and
// UnlinkContact write them. Bounded: the first kMaxMovedLinkEntries links are listed one by one;
// the rest are counted in one FIELD_CHANGED entry on the kept record (field "links", new_value
// "<n> more links moved by this merge, not listed one by one"). A lead merge's links are the
// returning leads that named a folded lead as their previous one (fold_lead.sql relinks them),
// in the same form: LINKED on the kept lead, UNLINKED the folded and LINKED the kept on each.
constexpr int kMaxMovedLinkEntries = 1000;

std::vector<HistoryRecord> MovedLinksHistory(MergeRepository& merges, domain::EntityKind kind,
                                             int64_t kept_id, const std::vector<int64_t>& fold_ids,
                                             int64_t user, const std::vector<int64_t>& deals,
                                             bool& summarised) {
  std::vector<HistoryRecord> history;
  const std::string type(domain::ToString(kind));
  // A lead merge moves the returning leads that named a folded lead as their previous one.
  const domain::EntityKind other_kind =
      kind == domain::EntityKind::kContact   ? domain::EntityKind::kCompany
      : kind == domain::EntityKind::kCompany ? domain::EntityKind::kContact
                                             : domain::EntityKind::kLead;
  const std::string other_type(domain::ToString(other_kind));
  int64_t listed = 0;
  int64_t unlisted = 0;
  for (int64_t deal : deals) {
    if (listed >= kMaxMovedLinkEntries) {
      ++unlisted;
      continue;
    }
    ++listed;
    history.push_back({.entity_type = type,
                       .entity_id = kept_id,
                       .kind = "LINKED",
                       .related_type = "DEAL",
                       .related_id = deal,
                       .user_id = user});
  }
  int64_t total = 0;
  const int room = static_cast<int>(std::max<int64_t>(0, kMaxMovedLinkEntries - listed));
  std::set<int64_t> gained;  // two folded records linked to the same one: one link moves
  // At least one row, so that `total` is known when no room is left.
  const std::vector<MergeRepository::MovedLink> links =
      merges.MovedLinks(type, kept_id, fold_ids, std::max(room, 1), &total);
  for (size_t i = 0; i < links.size() && i < static_cast<size_t>(room); ++i) {
    const MergeRepository::MovedLink& link = links[i];
    if (!gained.insert(link.other_id).second) {
      continue;
    }
    history.push_back({.entity_type = type,
                       .entity_id = kept_id,
                       .kind = "LINKED",
                       .new_value = link.role,
                       .related_type = other_type,
                       .related_id = link.other_id,
                       .user_id = user});
    history.push_back({.entity_type = other_type,
                       .entity_id = link.other_id,
                       .kind = "UNLINKED",
                       .related_type = type,
                       .related_id = link.folded_id,
                       .user_id = user});
    history.push_back({.entity_type = other_type,
                       .entity_id = link.other_id,
                       .kind = "LINKED",
                       .new_value = link.role,
                       .related_type = type,
                       .related_id = kept_id,
                       .user_id = user});
  }
  unlisted += std::max<int64_t>(0, total - room);  // rows, not distinct records: a bound
  summarised = unlisted > 0;
  if (unlisted > 0) {
    history.push_back({.entity_type = type,
                       .entity_id = kept_id,
                       .kind = "FIELD_CHANGED",
                       .field = "links",
                       .new_value = absl::StrCat(unlisted,
                                                 " more links moved by this merge, not listed "
                                                 "one by one"),
                       .user_id = user});
  }
  return history;
}

std::optional<domain::EntityKind> KindOf(const std::string& type) {
  if (type == "LEAD") return domain::EntityKind::kLead;
  if (type == "CONTACT") return domain::EntityKind::kContact;
  if (type == "COMPANY") return domain::EntityKind::kCompany;
  return std::nullopt;
}

}  // namespace

absl::Status LinkContactCompany(pqxx::connection& connection, grpc::CallbackServerContext* context,
                                int64_t contact_id, int64_t company_id,
                                const std::optional<std::string>& given_role,
                                v1::ContactCompanyLink* out) {
  if (given_role) {
    if (absl::Status text = CheckShortText("role", *given_role, domain::kMaxLabelBytes);
        !text.ok()) {
      return text;
    }
  }
  auto user = ActingUser(context);
  if (!user.ok()) {
    return user.status();
  }
  pqxx::work work(connection);
  if (absl::Status check = CheckLinkable(work, contact_id, company_id); !check.ok()) {
    return check;
  }
  if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
    return check;
  }
  std::optional<std::string> previous =
      ContactRepository(work).Link(contact_id, company_id, given_role);
  const std::string role = given_role.value_or(previous.value_or(""));
  std::vector<HistoryRecord> history;
  if (!previous) {
    history.push_back({.entity_type = "CONTACT",
                       .entity_id = contact_id,
                       .kind = "LINKED",
                       .new_value = role,
                       .related_type = "COMPANY",
                       .related_id = company_id,
                       .user_id = *user});
    history.push_back({.entity_type = "COMPANY",
                       .entity_id = company_id,
                       .kind = "LINKED",
                       .new_value = role,
                       .related_type = "CONTACT",
                       .related_id = contact_id,
                       .user_id = *user});
  } else if (*previous != role) {
    history.push_back({.entity_type = "CONTACT",
                       .entity_id = contact_id,
                       .kind = "LINKED",
                       .field = "role",
                       .old_value = *previous,
                       .new_value = role,
                       .related_type = "COMPANY",
                       .related_id = company_id,
                       .user_id = *user});
    history.push_back({.entity_type = "COMPANY",
                       .entity_id = company_id,
                       .kind = "LINKED",
                       .field = "role",
                       .old_value = *previous,
                       .new_value = role,
                       .related_type = "CONTACT",
                       .related_id = contact_id,
                       .user_id = *user});
  }
  HistoryRepository(work).Append(history);
  // Kept in a local: a range-for over a member of a temporary would dangle.
  const std::optional<Contact> contact = ContactRepository(work).Get(contact_id);
  for (const CompanyLink& link : contact->companies) {
    if (link.company_id == company_id) {
      LinkToProto(link, out);
    }
  }
  work.commit();
  return absl::OkStatus();
}

absl::Status UnlinkContactCompany(pqxx::connection& connection,
                                  grpc::CallbackServerContext* context, int64_t contact_id,
                                  int64_t company_id) {
  auto user = ActingUser(context);
  if (!user.ok()) {
    return user.status();
  }
  pqxx::work work(connection);
  if (absl::Status check = CheckLinkable(work, contact_id, company_id); !check.ok()) {
    return check;
  }
  if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
    return check;
  }
  if (!ContactRepository(work).Unlink(contact_id, company_id)) {
    return absl::NotFoundError(
        absl::StrCat("contact ", contact_id, " is not linked to company ", company_id));
  }
  HistoryRepository(work).Append(std::vector<HistoryRecord>{{.entity_type = "CONTACT",
                                                             .entity_id = contact_id,
                                                             .kind = "UNLINKED",
                                                             .related_type = "COMPANY",
                                                             .related_id = company_id,
                                                             .user_id = *user},
                                                            {.entity_type = "COMPANY",
                                                             .entity_id = company_id,
                                                             .kind = "UNLINKED",
                                                             .related_type = "CONTACT",
                                                             .related_id = contact_id,
                                                             .user_id = *user}});
  work.commit();
  return absl::OkStatus();
}

absl::StatusOr<MergeDone> MergeRecords(pqxx::connection& connection,
                                       grpc::CallbackServerContext* context, size_t max_identities,
                                       const std::string& type, int64_t kept_id,
                                       const std::vector<int64_t>& folded_ids,
                                       metrics::Counter* recordings_dropped) {
  auto user = ActingUser(context);
  if (!user.ok()) {
    return user.status();
  }
  return MergeRecords(connection, *user, max_identities, type, kept_id, folded_ids,
                      recordings_dropped);
}

absl::StatusOr<MergeDone> MergeRecords(pqxx::connection& connection, int64_t acting_user,
                                       size_t max_identities, const std::string& type,
                                       int64_t kept_id, const std::vector<int64_t>& folded_ids,
                                       metrics::Counter* recordings_dropped) {
  std::optional<domain::EntityKind> kind = KindOf(type);
  if (!kind) {
    return absl::InvalidArgumentError(absl::StrCat(type, " records are not merged"));
  }
  domain::MergeRequest request{.kind = *kind, .kept_id = kept_id, .folded_ids = folded_ids};
  if (absl::Status valid = domain::ValidateMergeRequest(request); !valid.ok()) {
    return valid;
  }
  pqxx::work work(connection);
  if (absl::Status check = CheckActiveUser(work, acting_user, "user"); !check.ok()) {
    return check;
  }
  std::vector<int64_t> all = folded_ids;
  all.push_back(kept_id);
  MergeRepository merges(work);
  // The identities first, then the rows (in id order): the order the inbound consumer takes
  // them in (identity locks, then the matched records' rows, e.g. FOR KEY SHARE by a foreign
  // key or an email thread's owner) and ConvertLead's. Rows first deadlocked against a batch
  // on the same person (40P01). Identities added between the read and the row locks are
  // locked after them, as ConvertLead does; the identities cannot move under a batch that
  // matched them.
  std::vector<IdentityKey> identities = merges.Identities(type, all);  // distinct
  std::sort(identities.begin(), identities.end());
  LockIdentityKeys(work, identities);
  std::vector<MergeRepository::Locked> locked = merges.Lock(type, all);
  std::vector<IdentityKey> now = merges.Identities(type, all);
  std::sort(now.begin(), now.end());
  if (now != identities) {
    LockIdentityKeys(work, now);
    identities = std::move(now);
  }
  domain::MergeRecord kept{.kind = *kind};
  std::vector<domain::MergeRecord> folded;
  const std::map<int64_t, domain::Produced> products =
      type == "LEAD" ? merges.Products(all) : std::map<int64_t, domain::Produced>{};
  for (const MergeRepository::Locked& row : locked) {
    domain::MergeRecord record = ToMergeRecord(merges, *kind, type, row, products);
    if (row.id == kept_id) {
      kept = record;
    } else {
      folded.push_back(record);
    }
  }
  if (kept.id == 0) {
    return domain::NotFound(*kind, kept_id);
  }
  auto plan = domain::PlanMerge(request, kept, folded);
  if (!plan.ok()) {
    return plan.status();
  }
  MergeDone done{.folded = plan->fold_ids};
  if (plan->no_op) {
    return done;
  }
  if (absl::Status capped = domain::CheckMergedIdentities(
          request, merges.Identities(type, {kept_id}).size(), identities.size(), max_identities);
      !capped.ok()) {
    return capped;
  }
  std::vector<int64_t> gained_deals;
  std::vector<HistoryRecord> history =
      RelinkedDealsHistory(merges, *kind, kept_id, plan->fold_ids, acting_user, gained_deals);
  std::vector<HistoryRecord> moved = MovedLinksHistory(
      merges, *kind, kept_id, plan->fold_ids, acting_user, gained_deals, done.links_summarised);
  history.insert(history.end(), moved.begin(), moved.end());
  const std::vector<OpenCallBack> call_backs =
      CallRepository(work).OpenCallBacks(type, plan->fold_ids);
  merges.Fold(type, kept_id, plan->fold_ids, acting_user);
  for (HistoryRecord& line : FoldedCallBacksHistory(work, type, kept_id, call_backs, acting_user,
                                                    &done.recordings_dropped)) {
    history.push_back(std::move(line));
  }
  for (const domain::MergeHistory& line : plan->history) {
    history.push_back({.entity_type = type,
                       .entity_id = line.subject_id,
                       .kind = line.kind,
                       .related_type = type,
                       .related_id = line.related_id,
                       .user_id = acting_user});
  }
  HistoryRepository(work).Append(history);
  work.commit();
  if (recordings_dropped != nullptr && done.recordings_dropped > 0) {
    recordings_dropped->Increment(static_cast<double>(done.recordings_dropped));
  }
  return done;
}

void CountSummarisedMerge(metrics::Family<metrics::Counter>* family, const std::string& type,
                          const MergeDone& done) {
  if (family != nullptr && done.links_summarised) {
    family->WithLabels({type}).Increment();
  }
}

std::string TypeName(v1::OwnerType type) {
  return WithoutPrefix(v1::OwnerType_Name(type), "OWNER_TYPE_");
}

v1::OwnerType OwnerTypeOf(const std::string& type) {
  v1::OwnerType owner = v1::OWNER_TYPE_UNSPECIFIED;
  v1::OwnerType_Parse("OWNER_TYPE_" + type, &owner);
  return owner;
}

// ---- Contacts and companies alike ----

void ToProto(const Contact& contact, v1::Contact* out) {
  out->set_id(contact.id);
  out->set_first_name(contact.first_name);
  out->set_last_name(contact.last_name);
  IdentitiesToProto(contact.identities, out);
  out->set_position(contact.position);
  out->set_responsible_user_id(contact.responsible_user_id);
  out->set_source_id(contact.source_id);
  out->set_comments(contact.comments);
  for (size_t i = 0; i < contact.companies.size() && i < kMaxInlineLinks; ++i) {
    LinkToProto(contact.companies[i], out->add_companies());
  }
  out->set_company_count(static_cast<int32_t>(contact.companies.size()));
  for (size_t i = 0; i < contact.deal_ids.size() && i < kMaxInlineLinks; ++i) {
    out->add_deal_ids(contact.deal_ids[i]);
  }
  out->set_deal_count(static_cast<int32_t>(contact.deal_ids.size()));
  *out->mutable_create_time() = FromMicros(contact.create_micros);
  *out->mutable_update_time() = FromMicros(contact.update_micros);
  out->set_etag(Etag(contact.version));
}

void ToProto(const Company& company, v1::Company* out) {
  out->set_id(company.id);
  out->set_name(company.name);
  out->set_industry(company.industry);
  out->set_website(company.website);
  IdentitiesToProto(company.identities, out);
  out->set_responsible_user_id(company.responsible_user_id);
  out->set_source_id(company.source_id);
  out->set_comments(company.comments);
  for (size_t i = 0; i < company.contacts.size() && i < kMaxInlineLinks; ++i) {
    LinkToProto(company.contacts[i], out->add_contacts());
  }
  out->set_contact_count(static_cast<int32_t>(company.contacts.size()));
  for (size_t i = 0; i < company.deal_ids.size() && i < kMaxInlineLinks; ++i) {
    out->add_deal_ids(company.deal_ids[i]);
  }
  out->set_deal_count(static_cast<int32_t>(company.deal_ids.size()));
  *out->mutable_create_time() = FromMicros(company.create_micros);
  *out->mutable_update_time() = FromMicros(company.update_micros);
  out->set_etag(Etag(company.version));
}

template <class Record>
absl::StatusOr<Record> LiveRecord(pqxx::transaction_base& work, int64_t id, bool lock) {
  using Kind = PeopleKind<Record>;
  std::optional<Record> record = typename Kind::Repository(work).Get(id, lock);
  if (!record || record->merged_into != 0) {
    // NOT_FOUND, naming the record standing at the end of its chain of merges.
    return NotLive(work, Kind::kKind, id);
  }
  return *record;
}

template <class Record>
absl::Status LoadRecord(pqxx::transaction_base& work, int64_t id,
                        typename PeopleKind<Record>::Proto* out) {
  auto record = LiveRecord<Record>(work, id);
  if (!record.ok()) {
    return record.status();
  }
  ToProto(*record, out);
  return absl::OkStatus();
}

absl::Status CheckPeopleText(std::initializer_list<std::pair<const char*, std::string>> fields,
                             const std::set<std::string>& bounded) {
  for (const auto& [field, value] : fields) {
    if (absl::Status status = CheckText(field, value); !status.ok()) {
      return status;
    }
  }
  for (const auto& [field, value] : fields) {
    if (bounded.count(field) != 0) {
      if (absl::Status status = CheckShortText(field, value, domain::kMaxNameBytes); !status.ok()) {
        return status;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status RefuseIdentitiesHeldElsewhere(pqxx::transaction_base& work, domain::EntityKind kind,
                                           int64_t self_id, const std::vector<IdentityKey>& keys,
                                           const std::string& what_to_do) {
  if (keys.empty()) {
    return absl::OkStatus();
  }
  std::map<int64_t, std::vector<std::string>> held;  // other record → the values it holds
  if (kind == domain::EntityKind::kLead) {
    MergeRepository merges(work);
    for (const KnownLead& lead : LeadRepository(work).FindByIdentities(keys)) {
      if (lead.id == self_id || lead.semantics != domain::Semantics::kProcess) {
        continue;
      }
      if (auto owner = merges.Find("LEAD", lead.id); owner && owner->merged_into != 0) {
        continue;
      }
      for (const IdentityKey& key : keys) {
        if (lead.identities.count(key) != 0) {
          held[lead.id].push_back(key.value);
        }
      }
    }
  } else {
    auto holders = [&](const std::vector<IdentityKey>& wanted) {
      return kind == domain::EntityKind::kContact
                 ? ContactRepository(work).FindByIdentities(wanted)
                 : CompanyRepository(work).FindByIdentities(wanted);
    };
    const std::vector<int64_t> any = holders(keys);
    if (std::all_of(any.begin(), any.end(), [&](int64_t id) { return id == self_id; })) {
      return absl::OkStatus();
    }
    for (const IdentityKey& key : keys) {
      for (int64_t id : holders({key})) {
        if (id != self_id) {
          held[id].push_back(key.value);
        }
      }
    }
  }
  if (held.empty()) {
    return absl::OkStatus();
  }
  const std::string noun = kind == domain::EntityKind::kLead      ? "lead"
                           : kind == domain::EntityKind::kContact ? "contact"
                                                                  : "company";
  const std::string holder = kind == domain::EntityKind::kLead ? "open lead" : noun;
  std::vector<std::string> parts;
  for (const auto& [id, values] : held) {
    parts.push_back(absl::StrCat(holder, " ", id, " holds ", absl::StrJoin(values, ", ")));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(absl::StrJoin(parts, "; "), ": a ", noun,
                   " never takes a phone, email or messenger id another ", holder,
                   " holds (one person, one record), and nothing was written; ", what_to_do));
}

template <class Record>
absl::Status AddIdentities(pqxx::transaction_base& work, int64_t id,
                           const std::vector<IdentityKey>& keys, int64_t user,
                           size_t max_identities) {
  using Kind = PeopleKind<Record>;
  typename Kind::Repository records(work);
  std::optional<Record> current = records.Get(id);
  if (!current) {
    return absl::NotFoundError(absl::StrCat(Kind::kNoun, " ", id, " not found"));
  }
  std::vector<IdentityKey> identities = current->identities;
  for (const IdentityKey& key : keys) {
    if (std::find(identities.begin(), identities.end(), key) == identities.end()) {
      identities.push_back(key);
    }
  }
  if (identities.size() == current->identities.size()) {
    return absl::OkStatus();
  }
  const std::vector<IdentityKey> added(identities.begin() + current->identities.size(),
                                       identities.end());
  if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
          work, Kind::kKind, id, added,
          absl::StrCat("merge them first if they are one person, or leave that identity out of "
                       "the request"));
      !apart.ok()) {
    return apart;
  }
  if (identities.size() > max_identities) {
    return absl::FailedPreconditionError(absl::StrCat(
        Kind::kNoun, " ", id, " holds these identities already and would hold ", identities.size(),
        " phones, emails and messenger ids with the request's, over the cap of ", max_identities,
        "; remove some from it (Update) or leave them out of the request"));
  }
  // The store's one writer of added identities: a new etag (an update made with the one read
  // before is ABORTED instead of dropping these) and FIELD_CHANGED.
  AddIdentitiesToExisting(work, Kind::kKind, id, keys, user);
  return absl::OkStatus();
}

namespace {

// FAILED_PRECONDITION when more than one record of the kind holds `keys`, naming each with the
// identities it holds: which one is the person is the caller's to say.
template <class Repository>
absl::Status RefuseIdentitiesOfSeveral(const char* noun, Repository& records,
                                       const std::vector<IdentityKey>& keys) {
  if (records.FindByIdentities(keys).size() < 2) {
    return absl::OkStatus();
  }
  std::map<int64_t, std::vector<std::string>> held;  // by record, in id order
  for (const IdentityKey& key : keys) {
    for (int64_t id : records.FindByIdentities({key})) {
      held[id].push_back(key.value);
    }
  }
  std::vector<std::string> parts;
  for (const auto& [id, values] : held) {
    parts.push_back(absl::StrCat(noun, " ", id, " holds ", absl::StrJoin(values, ", ")));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "the request's phones, emails and messenger ids belong to ", held.size(), " ", noun,
      " records (", absl::StrJoin(parts, "; "),
      "): nothing was written; send the identities of one of them, or merge them first"));
}

}  // namespace

template <class Record>
absl::Status InsertRecord(pqxx::work& work, int64_t user, const Record& row,
                          const std::vector<IdentityKey>& keys, bool upsert, size_t max_identities,
                          v1::UpsertOutcome* outcome, typename PeopleKind<Record>::Proto* out) {
  using Kind = PeopleKind<Record>;
  if (upsert && std::none_of(keys.begin(), keys.end(),
                             [](const IdentityKey& key) { return key.kind != "MESSENGER"; })) {
    // Nothing to find the record by: each retry of the call would make one more.
    return absl::InvalidArgumentError(
        "upsert_by_identity needs a phone or an email to find the existing record by");
  }
  for (const auto& [field, id] :
       {std::pair{"responsible_user_id", row.responsible_user_id}, {"user", user}}) {
    if (absl::Status check = CheckActiveUser(work, id, field); !check.ok()) {
      return check;
    }
  }
  if (absl::Status source = CheckSourceId(work, row.source_id); !source.ok()) {
    return source;
  }
  // The same identity locks as the inbound consumer: whoever holds one of these identities now
  // was committed before us, and nobody adds one until we commit.
  LockIdentityKeys(work, keys);
  typename Kind::Repository records(work);
  if (upsert) {
    std::vector<IdentityKey> reachable;
    for (const IdentityKey& key : keys) {
      if (key.kind != "MESSENGER") {
        reachable.push_back(key);
      }
    }
    std::vector<int64_t> existing = records.FindByIdentities(reachable);
    if (!existing.empty()) {
      // One person, one record: identities held by two records are two people (or a duplicate
      // to merge first); returning one and adding the other's identities to it mixed them up.
      if (absl::Status apart = RefuseIdentitiesOfSeveral(Kind::kNoun, records, keys); !apart.ok()) {
        return apart;
      }
      // The request's other phones and emails are this person's too: the record takes them, as
      // a record the inbound consumer matches takes a message's (docs/domain.md, "Upsert by
      // identity").
      if (absl::Status added =
              AddIdentities<Record>(work, existing.front(), keys, user, max_identities);
          !added.ok()) {
        return added;
      }
      *outcome = v1::UPSERT_OUTCOME_EXISTING;
      absl::Status loaded = LoadRecord<Record>(work, existing.front(), out);
      work.commit();
      return loaded;
    }
  }
  if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
          work, Kind::kKind, 0, keys,
          absl::StrCat("send upsert_by_identity to have that ", Kind::kNoun,
                       " returned with the request's identities added, merge the ", Kind::kNoun,
                       " records first if they are one person, or leave the shared identity out "
                       "(a switchboard phone belongs on the company)"));
      !apart.ok()) {
    return apart;
  }
  const int64_t id = records.Insert(row);
  records.SetIdentities(id, keys);
  HistoryRepository(work).Append(HistoryRecord{
      .entity_type = Kind::kType, .entity_id = id, .kind = "CREATED", .user_id = user});
  *outcome = v1::UPSERT_OUTCOME_CREATED;
  absl::Status loaded = LoadRecord<Record>(work, id, out);
  work.commit();
  return loaded;
}

template <class Record>
absl::Status UpdateRecord(pqxx::connection& connection, grpc::CallbackServerContext* context,
                          const typename PeopleKind<Record>::Proto& in,
                          const std::set<std::string>& paths, const std::string& default_region,
                          const ApplyFieldsFn<Record>& apply,
                          typename PeopleKind<Record>::Proto* response) {
  using Kind = PeopleKind<Record>;
  auto has = [&](const char* path) { return paths.count(path) != 0; };
  auto expected_version = ParseEtag(in.etag());
  if (!expected_version.ok()) {
    return expected_version.status();
  }
  auto user = ActingUser(context);
  if (!user.ok()) {
    return user.status();
  }
  auto keys = NormalizeIdentities(in.phones(), in.emails(), in.messengers(), default_region);
  if (!keys.ok()) {
    return keys.status();
  }
  pqxx::work work(connection);
  auto current = LiveRecord<Record>(work, in.id(), /*lock=*/true);
  if (!current.ok()) {
    return current.status();
  }
  if (*expected_version != 0 && *expected_version != current->version) {
    return absl::AbortedError(
        absl::StrCat("the ", Kind::kNoun, " changed since this etag was read; read it again"));
  }
  for (const auto& [field, id] :
       {std::pair{"responsible_user_id", has("responsible_user_id") ? in.responsible_user_id() : 0},
        {"user", *user}}) {
    if (absl::Status check = CheckActiveUser(work, id, field); !check.ok()) {
      return check;
    }
  }
  std::vector<HistoryRecord> history;
  ChangeFn change = [&](const std::string& field, const std::string& old_value,
                        const std::string& new_value) {
    RecordChange(history, Kind::kType, in.id(), *user, field, old_value, new_value);
  };
  Record next = *current;
  apply(work, has, *current, next, change);
  if (has("responsible_user_id")) next.responsible_user_id = in.responsible_user_id();
  if (has("source_id")) {
    if (absl::Status source = CheckSourceId(work, in.source_id()); !source.ok()) {
      return source;
    }
    next.source_id = in.source_id();
  }
  if (has("comments")) next.comments = in.comments();
  std::vector<IdentityKey> identities;
  for (const auto& [path, kind] :
       {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}, {"messengers", "MESSENGER"}}) {
    for (const IdentityKey& key : has(path) ? *keys : current->identities) {
      if (key.kind == kind) identities.push_back(key);
    }
  }
  change("responsible_user_id", std::to_string(current->responsible_user_id),
         std::to_string(next.responsible_user_id));
  change("source_id", current->source_id, next.source_id);
  change("comments", current->comments, next.comments);
  for (const auto& [field, kind] :
       {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}, {"messengers", "MESSENGER"}}) {
    change(field, JoinIdentities(current->identities, kind), JoinIdentities(identities, kind));
  }
  typename Kind::Repository records(work);
  if (has("phones") || has("emails") || has("messengers")) {
    LockIdentityKeys(work, identities);
    // Only what the update adds: an identity the record held already stays where it is.
    std::vector<IdentityKey> added;
    for (const IdentityKey& key : identities) {
      if (std::find(current->identities.begin(), current->identities.end(), key) ==
          current->identities.end()) {
        added.push_back(key);
      }
    }
    if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
            work, Kind::kKind, in.id(), added,
            absl::StrCat("merge the ", Kind::kNoun,
                         " records first if they are one person, or remove the identity from "
                         "the other one first"));
        !apart.ok()) {
      return apart;
    }
    records.SetIdentities(in.id(), identities);
  }
  if (!records.Update(next, current->version)) {
    return absl::AbortedError(
        absl::StrCat("the ", Kind::kNoun, " changed meanwhile; read it again"));
  }
  HistoryRepository(work).Append(history);
  absl::Status loaded = LoadRecord<Record>(work, in.id(), response);
  work.commit();
  return loaded;
}

template <class Record>
absl::Status DeleteRecord(pqxx::connection& connection, grpc::CallbackServerContext* context,
                          int64_t id, const std::string& etag) {
  using Kind = PeopleKind<Record>;
  auto expected_version = ParseEtag(etag);
  if (!expected_version.ok()) {
    return expected_version.status();
  }
  auto user = ActingUser(context);
  if (!user.ok()) {
    return user.status();
  }
  pqxx::work work(connection);
  auto current = LiveRecord<Record>(work, id, /*lock=*/true);
  if (!current.ok()) {
    return current.status();
  }
  if (*expected_version != 0 && *expected_version != current->version) {
    return absl::AbortedError(
        absl::StrCat("the ", Kind::kNoun, " changed since this etag was read; read it again"));
  }
  if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
    return check;
  }
  std::vector<HistoryRecord> history{HistoryRecord{
      .entity_type = Kind::kType, .entity_id = id, .kind = "DELETED", .user_id = *user}};
  for (const CompanyLink& link : Kind::Links(*current)) {
    history.push_back({.entity_type = Kind::kLinkedType,
                       .entity_id = Kind::LinkedId(link),
                       .kind = "UNLINKED",
                       .related_type = Kind::kType,
                       .related_id = id,
                       .user_id = *user});
  }
  // Each deal it was on keeps the trace: the deal stays (a sale is not undone by deleting the
  // person), without this contact or company from now on.
  for (int64_t deal_id : current->deal_ids) {
    history.push_back({.entity_type = "DEAL",
                       .entity_id = deal_id,
                       .kind = "UNLINKED",
                       .related_type = Kind::kType,
                       .related_id = id,
                       .user_id = *user});
  }
  // The records merged into it go with it (docs/domain.md, "Deleting a kept record").
  typename Kind::Repository records(work);
  const std::vector<int64_t> tombstones = records.Delete(id);
  for (int64_t folded : tombstones) {
    history.push_back({.entity_type = Kind::kType,
                       .entity_id = folded,
                       .kind = "DELETED",
                       .related_type = Kind::kType,
                       .related_id = id,
                       .user_id = *user});
  }
  HistoryRepository(work).Append(history);
  work.commit();
  return absl::OkStatus();
}

#define LEADFLOW_PEOPLE_INSTANTIATE(Record)                                                      \
  template absl::StatusOr<Record> LiveRecord<Record>(pqxx::transaction_base&, int64_t, bool);    \
  template absl::Status LoadRecord<Record>(pqxx::transaction_base&, int64_t,                     \
                                           PeopleKind<Record>::Proto*);                          \
  template absl::Status InsertRecord<Record>(pqxx::work&, int64_t, const Record&,                \
                                             const std::vector<IdentityKey>&, bool, size_t,      \
                                             v1::UpsertOutcome*, PeopleKind<Record>::Proto*);    \
  template absl::Status AddIdentities<Record>(pqxx::transaction_base&, int64_t,                  \
                                              const std::vector<IdentityKey>&, int64_t, size_t); \
  template absl::Status UpdateRecord<Record>(                                                    \
      pqxx::connection&, grpc::CallbackServerContext*, const PeopleKind<Record>::Proto&,         \
      const std::set<std::string>&, const std::string&, const ApplyFieldsFn<Record>&,            \
      PeopleKind<Record>::Proto*);                                                               \
  template absl::Status DeleteRecord<Record>(pqxx::connection&, grpc::CallbackServerContext*,    \
                                             int64_t, const std::string&);
LEADFLOW_PEOPLE_INSTANTIATE(Contact)
LEADFLOW_PEOPLE_INSTANTIATE(Company)
#undef LEADFLOW_PEOPLE_INSTANTIATE

}  // namespace leadflow::crm
