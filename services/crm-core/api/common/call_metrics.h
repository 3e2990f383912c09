#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace leadflow::crm {

/// Counts every call the gRPC server answers, by method and canonical status code
/// (`crm_api_calls_total{method,code}`), and times it by method
/// (`crm_api_call_duration_seconds{method}`), from the moment the server takes the call to the
/// moment its status is sent.
///
/// A server interceptor rather than RunCall: RunCall sees only the calls that reach a method's
/// body, while the interceptor also sees those gRPC's C++ layer answers itself (a request that
/// does not parse) and the health and reflection services, and counts a method added later
/// without anyone remembering to.
///
/// The labels are bounded: `method` is "Service/Method" for the methods of the services named at
/// construction (their descriptors list them), "other" for anything else (health, reflection, a
/// path a client made up); `code` is one of the 17 canonical names (OK, INVALID_ARGUMENT, …).
class CallMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  /// `services`: the full names of the registered services (e.g. "leadflow.crm.v1.LeadService").
  /// Registers the two families in `registry`, which must outlive the server.
  CallMetricsFactory(metrics::Registry& registry, const std::vector<std::string>& services);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  /// The `method` label of a call path ("/leadflow.crm.v1.LeadService/GetLead" →
  /// "LeadService/GetLead"; "other" when the path is not one of the services' methods).
  const std::string& MethodLabel(const char* path) const;

  metrics::Family<metrics::Counter>& calls() { return calls_; }
  metrics::Family<metrics::Histogram>& durations() { return durations_; }

 private:
  std::map<std::string, std::string, std::less<>> labels_;  // call path → method label
  metrics::Family<metrics::Counter>& calls_;
  metrics::Family<metrics::Histogram>& durations_;
};

/// The canonical name of a gRPC status code ("OK", "NOT_FOUND", …); "UNKNOWN" for a value
/// outside the 17.
std::string CodeLabel(grpc::StatusCode code);

}  // namespace leadflow::crm
