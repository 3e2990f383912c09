// HistoryService: each record's timeline, newest first.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/store/people_repository.h"

namespace leadflow::crm {

grpc::ServerUnaryReactor* HistoryApi::ListHistory(grpc::CallbackServerContext* context,
                                                  const v1::ListHistoryRequest* request,
                                                  v1::ListHistoryResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=, this](pqxx::connection& connection) {
                   const std::string type = TypeName(request->entity().type());
                   if (type.empty()) {
                     return absl::InvalidArgumentError(
                         "entity.type is required (OWNER_TYPE_LEAD, _CONTACT, _COMPANY or _DEAL)");
                   }
                   if (request->entity().id() == 0) {
                     return absl::InvalidArgumentError("entity.id is required");
                   }
                   if (request->entity().id() < 0) {
                     return absl::InvalidArgumentError("entity.id must be positive");
                   }
                   auto page = ParsePage(backend_.page_token_key, *request);
                   if (!page.ok()) {
                     return page.status();
                   }
                   pqxx::read_transaction work(connection);
                   std::vector<HistoryRecord> records = HistoryRepository(work).List(
                       type, request->entity().id(), page->after_id, page->limit());
                   // No timeline and no record: it never existed (NOT_FOUND). A record folded
                   // by a merge or deleted keeps its timeline (it ends with MERGED or DELETED):
                   // the history is the audit trail of whatever existed (docs/domain.md).
                   if (records.empty() && page->after_id == 0 &&
                       !MergeRepository(work).Find(type, request->entity().id())) {
                     return domain::NotFound(absl::AsciiStrToLower(type), request->entity().id());
                   }
                   FillPage(
                       std::move(records), *page,
                       [&](const HistoryRecord& record) {
                         v1::HistoryEntry* entry = response->add_entries();
                         entry->set_id(record.id);
                         entry->mutable_entity()->set_type(OwnerTypeOf(record.entity_type));
                         entry->mutable_entity()->set_id(record.entity_id);
                         entry->set_kind(record.kind);
                         entry->set_field(record.field);
                         entry->set_old_value(record.old_value);
                         entry->set_new_value(record.new_value);
                         if (!record.related_type.empty()) {
                           entry->mutable_related()->set_type(OwnerTypeOf(record.related_type));
                           entry->mutable_related()->set_id(record.related_id);
                         }
                         entry->set_user_id(record.user_id);
                         entry->set_event_id(record.event_id);
                         *entry->mutable_time() = FromMicros(record.at_micros);
                       },
                       response->mutable_next_page_token());
                   return absl::OkStatus();
                 });
}

}  // namespace leadflow::crm
