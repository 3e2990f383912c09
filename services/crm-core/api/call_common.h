#pragma once

// The call side of the API (docs/api.md, "Calls"): CallService (the unidentified calls), the call
// facts of CALL activities, and the `calls` part of the CRM settings.

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "crm-core/api/common/call.h"
#include "crm-core/domain/activity/activity.h"
#include "crm-core/domain/history/history.h"
#include "crm-core/store/call_repository.h"
#include "leadflow/crm/v1/call.grpc.pb.h"
#include "leadflow/crm/v1/settings.pb.h"

namespace leadflow::crm {

class CallApi final : public v1::CallService::CallbackService {
 public:
  explicit CallApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* ListUnidentifiedCalls(
      grpc::CallbackServerContext* context, const v1::ListUnidentifiedCallsRequest* request,
      v1::ListUnidentifiedCallsResponse* response) override;

 private:
  ApiBackend backend_;
};

void CallDetailsToProto(const Activity::Call& call, v1::CallDetails* out);

/// The timeline lines of a merge's call-backs (docs/architecture.md, "Calls"): for each open
/// call-back of the folded records (`before`, read before the fold) that the fold folded into
/// the kept record's, a MERGED line on the kept record, field "call_back", saying which
/// activity went into which and what the kept one holds now. Read in the merge's transaction,
/// after the fold. `recordings_dropped` (if given) is set to the recordings the fold left out
/// past the cap per call-back (RecordingsLeftOutByFold).
std::vector<HistoryRecord> FoldedCallBacksHistory(pqxx::transaction_base& work,
                                                  const std::string& type, int64_t kept_id,
                                                  const std::vector<OpenCallBack>& before,
                                                  int64_t user_id,
                                                  int64_t* recordings_dropped = nullptr);

/// The recordings a move of `before` (the open call-backs read before it) onto the record
/// (`type`, `kept_id`) left out past the cap, read in its transaction after the move; 0 when
/// nothing was folded.
int64_t RecordingsDroppedByFold(pqxx::transaction_base& work, const std::string& type,
                                int64_t kept_id, const std::vector<OpenCallBack>& before);

/// CrmSettings.calls as stored.
void CallSettingsToProto(const StoredCallSettings& settings, v1::CallSettings* out);

/// Applies an admin's CrmSettings.calls (validated: the SLA within bounds, each line well formed,
/// each queue key valid) onto `settings`, the line queues replaced by the ones given.
absl::Status CallSettingsFromProto(const v1::CallSettings& given, StoredCallSettings& settings);

}  // namespace leadflow::crm
