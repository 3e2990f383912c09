#pragma once

// The timeline entries a deal's birth writes, the same whichever way it is born:
// DealService/CreateDeal, LeadService/ConvertLead, inbound traffic in simple mode and the
// classic → simple switch job (docs/domain.md, "A deal's birth on the timelines").

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crm-core/domain/common/types.h"
#include "crm-core/domain/history/history.h"

namespace leadflow::crm {

/// A deal's place as its timeline names it: "<pipeline>/<stage>" ("1/NEW").
std::string StagePlace(int64_t pipeline_id, std::string_view stage_id);

/// The deal's CREATED entry: `field` "stage", `new_value` the place it starts in (closed there
/// when the stage is SUCCESS or FAILURE). The caller relates it (the lead it came from, the
/// contact inbound traffic made it for) and names who and which event.
HistoryRecord DealCreated(int64_t deal_id, int64_t pipeline_id, std::string_view stage_id);

/// A link the deal is born with (its company, each contact): LINKED on the deal's timeline,
/// related to `other`, then LINKED on `other`'s, related to the deal, appended to `out` — as
/// DealService/SetCompany and LinkContact write a link made later.
void AppendDealLinked(std::vector<HistoryRecord>& out, int64_t deal_id, domain::EntityRef other);

}  // namespace leadflow::crm
