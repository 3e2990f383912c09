#include "crm-core/api/common/call_metrics.h"

#include <google/protobuf/descriptor.h>

#include <chrono>
#include <stdexcept>

#include "absl/status/status.h"

namespace leadflow::crm {
namespace {

const std::string kOtherMethod = "other";

// One per call: counts the status the server sends, once, with the time since the call began.
class CallMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallMetricsInterceptor(CallMetricsFactory& factory, const std::string& method)
      : factory_(factory), method_(method), started_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!counted_ && methods->QueryInterceptionHookPoint(
                         grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      counted_ = true;
      const grpc::Status status = methods->GetSendStatus();
      factory_.calls().WithLabels({method_, CodeLabel(status.error_code())}).Increment();
      factory_.durations().WithLabels({method_}).Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    }
    methods->Proceed();
  }

 private:
  CallMetricsFactory& factory_;
  const std::string& method_;
  const std::chrono::steady_clock::time_point started_;
  bool counted_ = false;
};

}  // namespace

std::string CodeLabel(grpc::StatusCode code) {
  // absl's status codes are gRPC's, number for number, with the same canonical names.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

CallMetricsFactory::CallMetricsFactory(metrics::Registry& registry,
                                       const std::vector<std::string>& services)
    : calls_(registry.AddCounter("crm_api_calls_total",
                                 "gRPC calls answered, by method (Service/Method; other: health, "
                                 "reflection, unknown paths) and canonical status code",
                                 {"method", "code"})),
      durations_(registry.AddHistogram(
          "crm_api_call_duration_seconds",
          "Time from taking a gRPC call to sending its status (queue and database included)",
          {"method"}, metrics::DefaultLatencyBuckets())) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) {
      throw std::invalid_argument("CallMetricsFactory: no service " + name);
    }
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string& method = service->method(i)->name();
      labels_.emplace("/" + service->full_name() + "/" + method, service->name() + "/" + method);
    }
  }
}

const std::string& CallMetricsFactory::MethodLabel(const char* path) const {
  if (path == nullptr) {
    return kOtherMethod;
  }
  auto it = labels_.find(std::string_view(path));
  return it == labels_.end() ? kOtherMethod : it->second;
}

grpc::experimental::Interceptor* CallMetricsFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new CallMetricsInterceptor(*this, MethodLabel(info->method()));
}

}  // namespace leadflow::crm
