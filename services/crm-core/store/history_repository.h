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

class HistoryRepository {
 public:
  explicit HistoryRepository(pqxx::transaction_base& work) : work_(work) {}

  /// Appends the entries (none: no statement).
  void Append(const std::vector<HistoryRecord>& records);
  void Append(const HistoryRecord& record) { Append(std::vector<HistoryRecord>{record}); }
  /// Newest first, ids below `before_id` (0: from the newest).
  std::vector<HistoryRecord> List(const std::string& entity_type, int64_t entity_id,
                                  int64_t before_id, int limit);

 private:
  pqxx::transaction_base& work_;
};

}  // namespace leadflow::crm
