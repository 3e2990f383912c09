#include "crm-core/domain/history/deal_birth.h"

#include "absl/strings/str_cat.h"

namespace leadflow::crm {

std::string StagePlace(int64_t pipeline_id, std::string_view stage_id) {
  return absl::StrCat(pipeline_id, "/", std::string(stage_id));
}

HistoryRecord DealCreated(int64_t deal_id, int64_t pipeline_id, std::string_view stage_id) {
  HistoryRecord created = HistoryRecord::Of(domain::EntityKind::kDeal, deal_id, "CREATED");
  created.field = "stage";
  created.new_value = StagePlace(pipeline_id, stage_id);
  return created;
}

void AppendDealLinked(std::vector<HistoryRecord>& out, int64_t deal_id, domain::EntityRef other) {
  out.push_back(HistoryRecord::Of(domain::EntityKind::kDeal, deal_id, "LINKED").RelatedTo(other));
  out.push_back(HistoryRecord::Of(other.kind, other.id, "LINKED")
                    .RelatedTo({domain::EntityKind::kDeal, deal_id}));
}

}  // namespace leadflow::crm
