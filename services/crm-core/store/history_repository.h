#pragma once

// Every record's timeline (the history table). HistoryRepository::Append is the one history
// writer: the API, the inbound consumer, conversions, merges and the mode switch job record their
// changes through it, in the transaction of the change, one statement for any number of entries
// (store/sql/history/).

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/domain/history/history.h"

namespace leadflow::crm {

/// The user the API call running on this thread acts for (the x-leadflow-user-id metadata),
/// set by RunCall for the body of every write once it has checked that the user is active.
/// Append records it as "who" on every entry that names no user, so that no write of a call —
/// whichever repository or plan writes the entry — leaves an entry without it. The inbound
/// consumer and the background jobs run outside any scope (0: inbound traffic or the system).
class ActingUserScope {
 public:
  explicit ActingUserScope(int64_t user_id);
  ~ActingUserScope();
  ActingUserScope(const ActingUserScope&) = delete;
  ActingUserScope& operator=(const ActingUserScope&) = delete;

  /// The innermost scope's user on this thread; 0 outside any scope.
  static int64_t Current();

 private:
  int64_t previous_;
};

class HistoryRepository {
 public:
  explicit HistoryRepository(pqxx::transaction_base& work) : work_(work) {}

  /// Appends the entries (none: no statement); an entry with user_id 0 gets
  /// ActingUserScope::Current().
  void Append(const std::vector<HistoryRecord>& records);
  void Append(const HistoryRecord& record) { Append(std::vector<HistoryRecord>{record}); }
  /// Newest first, ids below `before_id` (0: from the newest).
  std::vector<HistoryRecord> List(const std::string& entity_type, int64_t entity_id,
                                  int64_t before_id, int limit);

 private:
  pqxx::transaction_base& work_;
};

}  // namespace leadflow::crm
