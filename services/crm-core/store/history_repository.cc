// The timeline over PostgreSQL (store/sql/history/).
#include "crm-core/store/history_repository.h"

#include "pg/pg.h"

namespace leadflow::crm {

namespace {
thread_local int64_t acting_user = 0;
}  // namespace

ActingUserScope::ActingUserScope(int64_t user_id) : previous_(acting_user) {
  acting_user = user_id;
}

ActingUserScope::~ActingUserScope() { acting_user = previous_; }

int64_t ActingUserScope::Current() { return acting_user; }

void HistoryRepository::Append(const std::vector<HistoryRecord>& records) {
  if (records.empty()) {
    return;
  }
  std::vector<std::string> types, kinds, fields, olds, news, related_types, events;
  std::vector<int64_t> ids, related_ids, users;
  for (const HistoryRecord& record : records) {
    types.push_back(record.entity_type);
    ids.push_back(record.entity_id);
    kinds.push_back(record.kind);
    fields.push_back(record.field);
    olds.push_back(pg::StripNul(record.old_value));
    news.push_back(pg::StripNul(record.new_value));
    related_types.push_back(record.related_type);
    related_ids.push_back(record.related_id);
    users.push_back(record.user_id != 0 ? record.user_id : acting_user);
    events.push_back(pg::StripNul(record.event_id));
  }
  work_.exec_prepared0("append_history", pg::TextArray(types), pg::IntArray(ids),
                       pg::TextArray(kinds), pg::TextArray(fields), pg::TextArray(olds),
                       pg::TextArray(news), pg::TextArray(related_types), pg::IntArray(related_ids),
                       pg::IntArray(users), pg::TextArray(events));
}

std::vector<HistoryRecord> HistoryRepository::List(const std::string& entity_type,
                                                   int64_t entity_id, int64_t before_id,
                                                   int limit) {
  std::vector<HistoryRecord> records;
  for (const auto& row :
       work_.exec_prepared("list_history", entity_type, entity_id, before_id, limit)) {
    records.push_back(HistoryRecord{.id = row[0].as<int64_t>(),
                                    .entity_type = row[1].as<std::string>(),
                                    .entity_id = row[2].as<int64_t>(),
                                    .kind = row[3].as<std::string>(),
                                    .field = row[4].as<std::string>(),
                                    .old_value = row[5].as<std::string>(),
                                    .new_value = row[6].as<std::string>(),
                                    .related_type = row[7].as<std::string>(),
                                    .related_id = row[8].as<int64_t>(),
                                    .user_id = row[9].as<int64_t>(),
                                    .event_id = row[10].as<std::string>(),
                                    .at_micros = row[11].as<int64_t>()});
  }
  return records;
}

}  // namespace leadflow::crm
