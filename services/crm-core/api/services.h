#pragma once

#include <map>
#include <memory>
#include <string>

#include "crm-core/api/common/call.h"
#include "leadflow/crm/v1/activity.grpc.pb.h"
#include "leadflow/crm/v1/lead.grpc.pb.h"
#include "leadflow/crm/v1/status.grpc.pb.h"
#include "leadflow/crm/v1/user.grpc.pb.h"

namespace leadflow::crm {

/// The gRPC services of crm-core (callback API), one file each (api/<resource>_service.cc).
/// Each call is authorised, validated, then runs repositories (store/) in one transaction on a
/// pooled connection; statuses map onto canonical gRPC codes (api/common/errors.h).
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
  /// In lead_conversion.cc.
  grpc::ServerUnaryReactor* ConvertLead(grpc::CallbackServerContext* context,
                                        const v1::ConvertLeadRequest* request,
                                        v1::ConvertLeadResponse* response) override;
  grpc::ServerUnaryReactor* MergeLeads(grpc::CallbackServerContext* context,
                                       const v1::MergeLeadsRequest* request,
                                       v1::MergeLeadsResponse* response) override;

 private:
  ApiBackend backend_;
  std::string default_region_;
};

class ActivityApi final : public v1::ActivityService::CallbackService {
 public:
  explicit ActivityApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* GetActivity(grpc::CallbackServerContext* context,
                                        const v1::GetActivityRequest* request,
                                        v1::Activity* response) override;
  grpc::ServerUnaryReactor* ListActivities(grpc::CallbackServerContext* context,
                                           const v1::ListActivitiesRequest* request,
                                           v1::ListActivitiesResponse* response) override;
  grpc::ServerUnaryReactor* CreateActivity(grpc::CallbackServerContext* context,
                                           const v1::CreateActivityRequest* request,
                                           v1::Activity* response) override;
  grpc::ServerUnaryReactor* UpdateActivity(grpc::CallbackServerContext* context,
                                           const v1::UpdateActivityRequest* request,
                                           v1::Activity* response) override;
  grpc::ServerUnaryReactor* DeleteActivity(grpc::CallbackServerContext* context,
                                           const v1::DeleteActivityRequest* request,
                                           google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* CompleteActivity(grpc::CallbackServerContext* context,
                                             const v1::CompleteActivityRequest* request,
                                             v1::Activity* response) override;
  // api/email_message_service.cc
  grpc::ServerUnaryReactor* ListEmailMessages(grpc::CallbackServerContext* context,
                                              const v1::ListEmailMessagesRequest* request,
                                              v1::ListEmailMessagesResponse* response) override;

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

/// Lead statuses and lead sources (Bitrix24's crm.status). Reading is open to every role;
/// changes need the admin role.
class StatusApi final : public v1::StatusService::CallbackService {
 public:
  explicit StatusApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* ListStatuses(grpc::CallbackServerContext* context,
                                         const v1::ListStatusesRequest* request,
                                         v1::ListStatusesResponse* response) override;
  grpc::ServerUnaryReactor* CreateStatus(grpc::CallbackServerContext* context,
                                         const v1::CreateStatusRequest* request,
                                         v1::Status* response) override;
  grpc::ServerUnaryReactor* UpdateStatus(grpc::CallbackServerContext* context,
                                         const v1::UpdateStatusRequest* request,
                                         v1::Status* response) override;
  grpc::ServerUnaryReactor* DeleteStatus(grpc::CallbackServerContext* context,
                                         const v1::DeleteStatusRequest* request,
                                         v1::DeleteStatusResponse* response) override;

 private:
  ApiBackend backend_;
};

}  // namespace leadflow::crm
