#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "crm-core/api/common/auth.h"
#include "crm-core/api/common/executor.h"
#include "crm-core/domain/rules/rule_settings.h"
#include "metrics/metrics.h"
#include "pg/pool.h"

namespace leadflow::crm {

/// What every API call runs on: the keys that authorise it, the executor its blocking work runs
/// on (bounded queue), and the database pool (bounded waits). All outlive the services.
struct ApiBackend {
  const std::map<std::string, Role>& keys;
  Executor& executor;
  pg::Pool& pool;
  /// The most identities a record may hold after a merge (RuleSettings::max_inbound_identities).
  size_t max_record_identities = RuleSettings{}.max_inbound_identities;
  /// The key List methods sign their page tokens with (api/common/paging.h): never empty once
  /// the server has started (ApiServer::Start).
  std::string page_token_key;
  /// crm_call_back_fold_recordings_dropped_total: recordings a merge or a conversion left out
  /// when it folded a call-back into another (at most domain::kMaxRecordingsPerCall kept);
  /// null: not counted.
  metrics::Counter* fold_recordings_dropped = nullptr;
  /// Merges whose moved links passed the timeline's bound (people_common.cc,
  /// kMaxMovedLinkEntries), by entity kind: crm_merge_links_summarised_total{kind}. Null: not
  /// counted (tests without a registry).
  metrics::Family<metrics::Counter>* merges_links_summarised = nullptr;
};

/// The metadata naming the user a write acts for (optional; absent: the API key alone).
inline constexpr char kActingUserMetadata[] = "x-leadflow-user-id";

/// Authorises, then runs `body` on a pooled connection within the call's deadline, on the
/// executor (never on gRPC's threads), and finishes the call with ToGrpc's mapping. `response`
/// is cleared before each attempt; a transaction PostgreSQL aborted for a concurrent one is run
/// again a few times.
///
/// For every write (`right` other than kRead) the acting user (kActingUserMetadata) is resolved
/// here, once, for all methods: INVALID_ARGUMENT when it is not an id, FAILED_PRECONDITION when it
/// names no active user — both before `body` runs, so nothing is written. `body` then runs
/// inside an ActingUserScope (store/history_repository.h): every history entry it writes, and
/// every stage history row, names that user.
grpc::ServerUnaryReactor* RunCall(grpc::CallbackServerContext* context, std::string_view method,
                                  const ApiBackend& backend, Right right,
                                  google::protobuf::Message* response,
                                  std::function<absl::Status(pqxx::connection&)> body);

}  // namespace leadflow::crm
