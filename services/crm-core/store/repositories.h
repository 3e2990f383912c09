#pragma once

// One repository per aggregate, each over the caller's transaction: the only code that runs
// crm-core's statements (store/sql/<repository>/*.sql). Rows come back as domain records.

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crm-core/domain/activity/activity.h"
#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/domain/lead/lead.h"
#include "crm-core/domain/status/status.h"
#include "crm-core/domain/user/user.h"

namespace leadflow::crm {

/// Processed events (the exactly-once key) and identity locks.
class EventRepository {
 public:
  explicit EventRepository(pqxx::transaction_base& work) : work_(work) {}
  /// Transaction-scoped advisory locks on these IdentityLockKey values, in one global order.
  void LockIdentities(const std::vector<std::string>& lock_keys);
  /// Claims the event ids; returns those claimed now (the others were processed before).
  std::set<std::string> Claim(const std::vector<std::string>& event_ids);

 private:
  pqxx::transaction_base& work_;
};

class LeadRepository {
 public:
  explicit LeadRepository(pqxx::transaction_base& work) : work_(work) {}

  std::optional<Lead> Get(int64_t id);
  struct Filter {
    std::string status;  // empty: any
    std::string source;  // empty: any
    int64_t responsible_user_id = 0;
    int64_t created_after_micros = 0;   // inclusive; 0: no bound
    int64_t created_before_micros = 0;  // exclusive; 0: no bound
  };
  /// Newest first, ids below `before_id` (0: from the newest), at most `limit`.
  std::vector<Lead> List(const Filter& filter, int64_t before_id, int limit);
  /// A lead made by hand (title, status, source, names, city, comments, responsible); its id.
  int64_t Insert(const Lead& lead);
  void AddIdentity(int64_t lead_id, const IdentityKey& key);
  /// A lead made for a returning customer: is_returning, and its links (0: none).
  void MarkReturning(int64_t lead_id, int64_t previous_lead_id, int64_t contact_id,
                     int64_t company_id);
  /// Sets the `fields` (title, status, first_name, last_name, company_name, city, comments,
  /// responsible_user_id) from `values`; false when the lead is missing or its version is not
  /// `expected_version` (0: any).
  bool Update(int64_t id, int64_t expected_version, const std::set<std::string>& fields,
              const Lead& values);
  bool Exists(int64_t id);
  /// The lead's responsible user (0: nobody); nullopt when the lead does not exist.
  std::optional<int64_t> Responsible(int64_t id);

  // ---- the inbound batch: each runs once per batch, whatever its size ----
  /// Every lead holding one of `keys`, with all its identities and its status's semantics.
  std::vector<KnownLead> FindByIdentities(const std::vector<IdentityKey>& keys);
  std::vector<int64_t> AllocateIds(size_t count);
  /// Leads with their ids allocated: title, source, names, city, comments, source details,
  /// responsible, repeat count, returning, previous lead, origin event.
  void InsertMany(const std::vector<Lead>& leads);
  void AddIdentities(const std::vector<std::pair<int64_t, IdentityKey>>& identities);
  void AddRepeats(const std::map<int64_t, int>& repeats);

 private:
  pqxx::transaction_base& work_;
};

class ActivityRepository {
 public:
  explicit ActivityRepository(pqxx::transaction_base& work) : work_(work) {}

  std::optional<Activity> Get(int64_t id);
  enum class Completion { kAny = 0, kOpen = 1, kCompleted = 2 };
  struct Filter {
    std::string owner_type;  // empty: any owner
    int64_t owner_id = 0;
    int64_t responsible_user_id = 0;
    Completion completion = Completion::kAny;
    bool overdue_only = false;  // open, its deadline passed, its record open (list_activities)
  };
  std::vector<Activity> List(const Filter& filter, int64_t before_id, int limit);
  /// A planned activity (type, owner, subject, description, responsible, deadline), or one
  /// logged done (completed: at `complete_micros`, none: now); its id.
  int64_t Insert(const Activity& activity, std::optional<int64_t> complete_micros = std::nullopt);
  /// Completes an open activity; false when it does not exist or is completed already.
  bool Complete(int64_t id);
  /// Activity `id` locked until the transaction ends: its version (the etag); nullopt when it
  /// does not exist.
  std::optional<int64_t> Lock(int64_t id);
  /// Sets subject, description, responsible (0: none), completed and, with `deadline_changed`,
  /// the deadline from `activity` (completing keeps an earlier completion time; reopening clears
  /// it). A deadline left alone is not rewritten from its microseconds.
  void Update(const Activity& activity, bool deadline_changed);
  void Delete(int64_t id);
  /// The open call-back of the record other than `except_id`; 0: none.
  int64_t OtherOpenCallBack(const std::string& owner_type, int64_t owner_id, int64_t except_id);
  /// Activities of inbound events on leads: each with its deadline in minutes from now (0: none).
  void InsertInbound(const std::vector<Activity>& activities,
                     const std::vector<int64_t>& deadline_minutes);

 private:
  pqxx::transaction_base& work_;
};

class UserRepository {
 public:
  explicit UserRepository(pqxx::transaction_base& work) : work_(work) {}

  int64_t Insert(const User& user);
  std::optional<User> Get(int64_t id);
  /// In id order, ids above `after_id`.
  std::vector<User> List(int64_t after_id, int limit);
  /// Sets the `fields` (name, email, active) from `values`; false when the user does not exist.
  /// A deactivation first waits for the writes acting for the user in flight (HoldActingUser),
  /// and holds off new ones until the commit.
  bool Update(int64_t id, const std::set<std::string>& fields, const User& values);
  bool IsActive(int64_t id);
  /// Holds user `id` as the acting user of a write on this session (an advisory lock, shared,
  /// session-level) until ReleaseActingUser: the write's own transactions then run before any
  /// deactivation of the user, or after it and see it (api/common/call.cc).
  void HoldActingUser(int64_t id);
  void ReleaseActingUser(int64_t id);
  std::vector<int64_t> ActiveIds();
  /// The user other than `except_id` answering on `extension`; 0: nobody.
  int64_t WithExtension(const std::string& extension, int64_t except_id);
  /// The user other than `except_id` with `email` (case-insensitive); 0: nobody. Checked under
  /// LockEmails, held to the commit.
  int64_t WithEmail(const std::string& email, int64_t except_id);
  void LockEmails();
  /// The user at `position` of an assignment queue ("channel:API"; AdvanceQueue takes positions):
  /// round-robin over its active members in order, else over every active user — the rotation
  /// the inbound consumer uses. 0 when nobody is active.
  int64_t QueueUser(const std::string& queue, int64_t position);

 private:
  pqxx::transaction_base& work_;
};

/// Lead statuses or lead sources (StatusService), by kind.
class StatusRepository {
 public:
  StatusRepository(pqxx::transaction_base& work, StatusKind kind) : work_(work), kind_(kind) {}

  /// Serialises edits of this list until the transaction ends.
  void Lock();
  std::vector<StatusEntry> List();
  bool Exists(const std::string& id);
  /// One entry of this list by id.
  std::optional<StatusEntry> Get(const std::string& id);
  /// Lead statuses: the id of the SUCCESS status (the conversion status); empty when none.
  std::string SuccessStatusId();
  void Insert(const StatusEntry& status);
  void Update(const StatusEntry& status);
  void Delete(const std::string& id);
  /// Leads with this status (or source).
  int64_t CountUsing(const std::string& id);
  /// Locks one entry's row (FOR UPDATE): leads naming it in the meantime wait for the commit.
  void LockEntry(const std::string& id);

 private:
  bool statuses() const { return kind_ == StatusKind::kLeadStatus; }
  pqxx::transaction_base& work_;
  StatusKind kind_;
};

}  // namespace leadflow::crm
