#pragma once

// What the deal side's services share: semantics on the wire, pipelines and deals as protos.

#include <optional>

#include "crm-core/domain/common/types.h"
#include "crm-core/store/deal_repository.h"
#include "leadflow/crm/v1/common.pb.h"
#include "leadflow/crm/v1/deal.pb.h"
#include "leadflow/crm/v1/pipeline.pb.h"

namespace leadflow::crm {

inline std::optional<domain::Semantics> SemanticsFromProto(v1::Semantics semantics) {
  switch (semantics) {
    case v1::SEMANTICS_PROCESS:
      return domain::Semantics::kProcess;
    case v1::SEMANTICS_SUCCESS:
      return domain::Semantics::kSuccess;
    case v1::SEMANTICS_FAILURE:
      return domain::Semantics::kFailure;
    default:
      return std::nullopt;
  }
}

inline v1::Semantics SemanticsToProto(domain::Semantics semantics) {
  switch (semantics) {
    case domain::Semantics::kProcess:
      return v1::SEMANTICS_PROCESS;
    case domain::Semantics::kSuccess:
      return v1::SEMANTICS_SUCCESS;
    case domain::Semantics::kFailure:
      return v1::SEMANTICS_FAILURE;
  }
  return v1::SEMANTICS_UNSPECIFIED;
}

void PipelineToProto(const StoredPipeline& stored, v1::Pipeline* out);
void DealToProto(const StoredDeal& deal, v1::Deal* out);

}  // namespace leadflow::crm
