#pragma once

// Repositories of contacts, companies, their links, person search and merges; each over the
// caller's transaction. The timeline is history_repository.h.

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/domain/conversion/conversion.h"
#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/domain/people/people.h"
#include "crm-core/store/history_repository.h"

namespace leadflow::crm {

/// Created-at bounds and owner filters of contact and company lists.
struct PeopleFilter {
  int64_t responsible_user_id = 0;    // 0: any
  int64_t linked_id = 0;              // contacts: of this company; companies: of this contact
  int64_t created_after_micros = 0;   // inclusive; 0: no bound
  int64_t created_before_micros = 0;  // exclusive; 0: no bound
};

class ContactRepository {
 public:
  explicit ContactRepository(pqxx::transaction_base& work) : work_(work) {}

  /// With identities, company links and deals; merged-away contacts too (merged_into set).
  /// `lock`: FOR UPDATE.
  std::optional<Contact> Get(int64_t id, bool lock = false);
  /// Not merged away, in id order above `after_id`.
  std::vector<Contact> List(const PeopleFilter& filter, int64_t after_id, int limit);
  /// The fields (search keys derived from the names); its id.
  int64_t Insert(const Contact& contact);
  /// Writes every field; false when its version is no longer `version` (the caller's read).
  bool Update(const Contact& contact, int64_t version);
  /// Replaces the contact's identities by `keys`.
  void SetIdentities(int64_t id, const std::vector<IdentityKey>& keys);
  /// Deletes the contact, its activities and the contacts merged into it (at any depth); the
  /// ids of those.
  std::vector<int64_t> Delete(int64_t id);
  /// Contacts not merged away holding one of `keys`, oldest first.
  std::vector<int64_t> FindByIdentities(const std::vector<IdentityKey>& keys);
  /// Links the pair, with `role` when given; an existing link keeps its role unless one is given.
  /// The previous role when it was linked already.
  std::optional<std::string> Link(int64_t contact_id, int64_t company_id,
                                  const std::optional<std::string>& role);
  bool Unlink(int64_t contact_id, int64_t company_id);

 private:
  pqxx::transaction_base& work_;
};

class CompanyRepository {
 public:
  explicit CompanyRepository(pqxx::transaction_base& work) : work_(work) {}

  std::optional<Company> Get(int64_t id, bool lock = false);
  std::vector<Company> List(const PeopleFilter& filter, int64_t after_id, int limit);
  int64_t Insert(const Company& company);
  bool Update(const Company& company, int64_t version);
  void SetIdentities(int64_t id, const std::vector<IdentityKey>& keys);
  /// As ContactRepository::Delete.
  std::vector<int64_t> Delete(int64_t id);
  std::vector<int64_t> FindByIdentities(const std::vector<IdentityKey>& keys);

 private:
  pqxx::transaction_base& work_;
};

/// Finding a person: by one normalised identity, or by a folded name prefix.
class SearchRepository {
 public:
  explicit SearchRepository(pqxx::transaction_base& work) : work_(work) {}

  /// Leads, then contacts, then companies holding the identity, each by id, at most `limit`.
  std::vector<SearchHit> ByIdentity(const IdentityKey& key, int limit);
  /// Records of `type` (LEAD, CONTACT, COMPANY) a word of whose stored name key (or company
  /// name's) starts with one of `query_forms` (naming's SearchQueryForms), ids above `after_id`,
  /// in id order.
  std::vector<SearchHit> ByName(const std::string& type,
                                const std::vector<std::string>& query_forms, int64_t after_id,
                                int limit);

 private:
  pqxx::transaction_base& work_;
};

/// What a merge moves from folded records of one kind (LEAD, CONTACT, COMPANY) to the kept one.
class MergeRepository {
 public:
  explicit MergeRepository(pqxx::transaction_base& work) : work_(work) {}

  struct Owner {
    /// Where its chain of merges ends (at most 20 merges along); 0: live.
    int64_t merged_into = 0;
    int64_t responsible_user_id = 0;
  };
  /// A lead, contact, company or deal as an owner; nullopt when it does not exist.
  std::optional<Owner> Find(const std::string& type, int64_t id);
  struct Locked {
    int64_t id = 0;
    int64_t merged_into = 0;  // 0: not merged away
    bool converted = false;   // leads only
  };
  /// Locks the records of `type` among `ids` (the missing ones are absent), in id order.
  std::vector<Locked> Lock(const std::string& type, const std::vector<int64_t>& ids);
  /// What each converted lead among `ids` produced (leads only; the others are absent).
  std::map<int64_t, domain::Produced> Products(const std::vector<int64_t>& ids);
  /// A deal a merge relinks (a folded contact's, a folded company's), read before the fold.
  struct RelinkedDeal {
    int64_t deal_id = 0;
    int64_t folded_id = 0;
    bool kept_linked = false;  // the kept record was on the deal already
  };
  std::vector<RelinkedDeal> RelinkedDeals(const std::string& type, int64_t kept_id,
                                          const std::vector<int64_t>& folded_ids);
  /// A contact ↔ company link a merge moves to the kept record (one it did not hold), read
  /// before the fold.
  struct MovedLink {
    int64_t other_id = 0;   // the company (a contact merge), the contact (a company merge), the
                            // returning lead (a lead merge)
    int64_t folded_id = 0;  // the folded record that held it
    std::string role;
  };
  /// The first `limit` such links in (other, folded) order; `*total`: how many there are.
  std::vector<MovedLink> MovedLinks(const std::string& type, int64_t kept_id,
                                    const std::vector<int64_t>& folded_ids, int limit,
                                    int64_t* total);
  /// Every identity the records hold.
  std::vector<IdentityKey> Identities(const std::string& type, const std::vector<int64_t>& ids);
  /// Moves the folded records' identities (deduplicated), activities and links to `kept_id`,
  /// marks them merged_into it and records them in the merges table.
  void Fold(const std::string& type, int64_t kept_id, const std::vector<int64_t>& folded_ids,
            int64_t user_id);

 private:
  pqxx::transaction_base& work_;
};

/// A deal's last activity is now (idle deals count from it).
void TouchDealActivity(pqxx::transaction_base& work, int64_t deal_id);
/// A lead's folded search keys, from its names (naming SearchKey).
void SetLeadSearchKeys(pqxx::transaction_base& work, int64_t lead_id, const std::string& first,
                       const std::string& last, const std::string& company);

/// Locks of the identities, shared with the inbound consumer (EventRepository::LockIdentities).
void LockIdentityKeys(pqxx::transaction_base& work, const std::vector<IdentityKey>& keys);

/// A phone, email or messenger id another live record of the same kind holds.
struct HeldIdentity {
  IdentityKey key;
  int64_t holder_id = 0;  // the oldest such record
};

/// One person, one record: among `keys`, those contact or company `id` (`kind` kContact or
/// kCompany) does not hold and another live record of its kind holds, each with its oldest
/// holder, by kind and value. Such an identity is never added to `id` (docs/domain.md, "One
/// person, one record"): ConvertLead into an existing record refuses it, the mode switch and
/// AddIdentitiesToExisting leave it.
std::vector<HeldIdentity> IdentitiesHeldByAnother(pqxx::transaction_base& work,
                                                  domain::EntityKind kind, int64_t id,
                                                  const std::vector<IdentityKey>& keys);

struct AddedIdentities {
  std::vector<IdentityKey> added;   // now on the record
  std::vector<HeldIdentity> left;   // held by another record of its kind: not added
  std::vector<IdentityKey> capped;  // past `max_identities`: not added
};

/// The one writer of identities added to an existing contact or company (`kind` kContact or
/// kCompany): ConvertLead into it, the upserts, inbound traffic and the mode switch call it, so
/// that none forgets what it does. Adds the `keys` the record lacks and no other live record of
/// its kind holds (those are `left`), under its row lock (FOR NO KEY UPDATE, as an update takes);
/// when it added any, a new version (etag) and update time, and FIELD_CHANGED phones / emails /
/// messengers (old → new, as UpdateContact writes them) by `user_id` (0: the acting user of the
/// call, none for inbound traffic and jobs) and `event_id` through HistoryRepository. Nothing is
/// written when nothing is added, or when the record does not exist. The caller holds the
/// identity locks of `keys`. With `max_identities`, the record ends with at most that many
/// (counted under the row lock): the first keys in order are added, as inbound traffic attaches
/// them, the rest are `capped`; a record at or over it already gains none. Callers that refuse
/// over the cap instead (ConvertLead, the upserts) check it before and pass none.
AddedIdentities AddIdentitiesToExisting(pqxx::transaction_base& work, domain::EntityKind kind,
                                        int64_t id, const std::vector<IdentityKey>& keys,
                                        int64_t user_id = 0, const std::string& event_id = "",
                                        std::optional<size_t> max_identities = std::nullopt);

/// The lead, contact, company or deal a write names (its owner, a link's other side, the
/// existing record a conversion uses), held until the transaction ends: FOR KEY SHARE, which a
/// merge's and a delete's row locks (FOR UPDATE) wait for and which waits for theirs. The write
/// then either commits before the merge moves what it wrote, or reads the merge here. nullopt:
/// it does not exist; else where it was merged into (0: live). Every write naming another
/// record goes through it (docs/domain.md, "Writes naming another record").
std::optional<int64_t> HoldReferenced(pqxx::transaction_base& work, domain::EntityKind kind,
                                      int64_t id);

}  // namespace leadflow::crm
