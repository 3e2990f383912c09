// The timeline entries the inbound consumer writes (CREATED by an event, LINKED); one statement
// for every entry of a batch.

#include "crm-core/store/inbound_repository.h"
#include "pg/pg.h"

namespace leadflow::crm {

void AppendInboundHistory(pqxx::transaction_base& work,
                          const std::vector<InboundHistoryRecord>& records) {
  if (records.empty()) {
    return;
  }
  std::vector<std::string> entities, kinds, related_types, events;
  std::vector<int64_t> entity_ids, related_ids, users;
  for (const InboundHistoryRecord& record : records) {
    entities.emplace_back(domain::ToString(record.entity));
    entity_ids.push_back(record.entity_id);
    kinds.push_back(record.kind);
    related_types.emplace_back(record.related ? domain::ToString(record.related->kind) : "");
    related_ids.push_back(record.related ? record.related->id : 0);
    users.push_back(record.user_id);
    events.push_back(pg::StripNul(record.event_id));
  }
  work.exec_prepared("inbound_insert_history_records", pg::TextArray(entities),
                     pg::IntArray(entity_ids), pg::TextArray(kinds), pg::TextArray(related_types),
                     pg::IntArray(related_ids), pg::IntArray(users), pg::TextArray(events));
}

}  // namespace leadflow::crm
