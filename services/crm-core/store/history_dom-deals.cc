// The timeline entries the deal side writes (pipelines' deals, conversions): one row of the
// history table each, in the caller's transaction.
#include "crm-core/store/deal_repository.h"

namespace leadflow::crm {

void AppendHistory(pqxx::transaction_base& work, const DealHistoryRecord& record) {
  work.exec_prepared("append_history_dd", std::string(domain::ToString(record.entity)),
                     record.entity_id, record.kind, record.field, record.old_value,
                     record.new_value,
                     record.related ? std::string(domain::ToString(*record.related)) : "",
                     record.related_id, record.user_id, record.event_id);
}

}  // namespace leadflow::crm
