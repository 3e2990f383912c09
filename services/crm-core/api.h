#pragma once

#include <map>
#include <memory>
#include <string>

#include "crm-core/auth.h"
#include "crm-core/executor.h"
#include "leadflow/crm/v1/crm.grpc.pb.h"
#include "pg/pool.h"

namespace leadflow::crm {

/// What every API call runs on: the keys that authorise it, the executor its blocking work runs
/// on (bounded queue), and the database pool (bounded waits). All outlive the services.
struct ApiBackend {
  const std::map<std::string, Role>& keys;
  Executor& executor;
  pg::Pool& pool;
};

/// The gRPC services of crm-core (callback API). Each call is authorised, validated, then runs
/// named statements on a pooled connection; statuses map onto canonical gRPC codes.
class LeadApi final : public v1::LeadService::CallbackService {
 public:
  /// Phones of walk-in leads without a country code are read as numbers of `default_region`.
  LeadApi(const ApiBackend& backend, std::string default_region)
      : backend_(backend), default_region_(std::move(default_region)) {}
  grpc::ServerUnaryReactor* GetLead(grpc::CallbackServerContext* context,
                                    const v1::GetLeadRequest* request, v1::Lead* response) override;
  grpc::ServerUnaryReactor* ListLeads(grpc::CallbackServerContext* context,
                                      const v1::ListLeadsRequest* request,
                                      v1::ListLeadsResponse* response) override;
  grpc::ServerUnaryReactor* CreateLead(grpc::CallbackServerContext* context,
                                       const v1::CreateLeadRequest* request,
                                       v1::Lead* response) override;
  grpc::ServerUnaryReactor* UpdateLead(grpc::CallbackServerContext* context,
                                       const v1::UpdateLeadRequest* request,
                                       v1::Lead* response) override;

 private:
  ApiBackend backend_;
  std::string default_region_;
};

class ActivityApi final : public v1::ActivityService::CallbackService {
 public:
  explicit ActivityApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* ListActivities(grpc::CallbackServerContext* context,
                                           const v1::ListActivitiesRequest* request,
                                           v1::ListActivitiesResponse* response) override;
  grpc::ServerUnaryReactor* CreateActivity(grpc::CallbackServerContext* context,
                                           const v1::CreateActivityRequest* request,
                                           v1::Activity* response) override;
  grpc::ServerUnaryReactor* CompleteActivity(grpc::CallbackServerContext* context,
                                             const v1::CompleteActivityRequest* request,
                                             v1::Activity* response) override;

 private:
  ApiBackend backend_;
};

class UserApi final : public v1::UserService::CallbackService {
 public:
  explicit UserApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* context,
                                       const v1::CreateUserRequest* request,
                                       v1::User* response) override;
  grpc::ServerUnaryReactor* GetUser(grpc::CallbackServerContext* context,
                                    const v1::GetUserRequest* request, v1::User* response) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* context,
                                      const v1::ListUsersRequest* request,
                                      v1::ListUsersResponse* response) override;
  grpc::ServerUnaryReactor* UpdateUser(grpc::CallbackServerContext* context,
                                       const v1::UpdateUserRequest* request,
                                       v1::User* response) override;

 private:
  ApiBackend backend_;
};

/// Page tokens are opaque to clients: "the id below which the next page starts", encoded.
std::string EncodePageToken(int64_t after_id);
absl::StatusOr<int64_t> DecodePageToken(const std::string& token);

}  // namespace leadflow::crm
