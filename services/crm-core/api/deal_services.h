#pragma once

// The deal side of crm-core's gRPC API: pipelines and stages, deals, the CRM settings
// (one file each: pipeline_service.cc, deal_service.cc, settings_service.cc). Same conventions as
// services.h.

#include "crm-core/api/common/call.h"
#include "leadflow/crm/v1/deal.grpc.pb.h"
#include "leadflow/crm/v1/pipeline.grpc.pb.h"
#include "leadflow/crm/v1/settings.grpc.pb.h"

namespace leadflow::crm {

/// Reading is open to every role; changes need the admin role. Every edit runs under the
/// pipeline's row lock, so concurrent edits cannot break the domain's invariants.
class PipelineApi final : public v1::PipelineService::CallbackService {
 public:
  explicit PipelineApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* CreatePipeline(grpc::CallbackServerContext* context,
                                           const v1::CreatePipelineRequest* request,
                                           v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* GetPipeline(grpc::CallbackServerContext* context,
                                        const v1::GetPipelineRequest* request,
                                        v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* ListPipelines(grpc::CallbackServerContext* context,
                                          const v1::ListPipelinesRequest* request,
                                          v1::ListPipelinesResponse* response) override;
  grpc::ServerUnaryReactor* UpdatePipeline(grpc::CallbackServerContext* context,
                                           const v1::UpdatePipelineRequest* request,
                                           v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* DeletePipeline(grpc::CallbackServerContext* context,
                                           const v1::DeletePipelineRequest* request,
                                           google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* AddStage(grpc::CallbackServerContext* context,
                                     const v1::AddStageRequest* request,
                                     v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* UpdateStage(grpc::CallbackServerContext* context,
                                        const v1::UpdateStageRequest* request,
                                        v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* ReorderStages(grpc::CallbackServerContext* context,
                                          const v1::ReorderStagesRequest* request,
                                          v1::Pipeline* response) override;
  grpc::ServerUnaryReactor* RemoveStage(grpc::CallbackServerContext* context,
                                        const v1::RemoveStageRequest* request,
                                        v1::Pipeline* response) override;

 private:
  ApiBackend backend_;
};

/// Reading is open to every role; changes need the integration or admin role.
class DealApi final : public v1::DealService::CallbackService {
 public:
  explicit DealApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* GetDeal(grpc::CallbackServerContext* context,
                                    const v1::GetDealRequest* request, v1::Deal* response) override;
  grpc::ServerUnaryReactor* ListDeals(grpc::CallbackServerContext* context,
                                      const v1::ListDealsRequest* request,
                                      v1::ListDealsResponse* response) override;
  grpc::ServerUnaryReactor* CreateDeal(grpc::CallbackServerContext* context,
                                       const v1::CreateDealRequest* request,
                                       v1::Deal* response) override;
  grpc::ServerUnaryReactor* UpdateDeal(grpc::CallbackServerContext* context,
                                       const v1::UpdateDealRequest* request,
                                       v1::Deal* response) override;
  grpc::ServerUnaryReactor* DeleteDeal(grpc::CallbackServerContext* context,
                                       const v1::DeleteDealRequest* request,
                                       google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* MoveDeal(grpc::CallbackServerContext* context,
                                     const v1::MoveDealRequest* request,
                                     v1::Deal* response) override;
  grpc::ServerUnaryReactor* ListStageHistory(grpc::CallbackServerContext* context,
                                             const v1::ListStageHistoryRequest* request,
                                             v1::ListStageHistoryResponse* response) override;
  grpc::ServerUnaryReactor* LinkContact(grpc::CallbackServerContext* context,
                                        const v1::LinkDealContactRequest* request,
                                        v1::Deal* response) override;
  grpc::ServerUnaryReactor* UnlinkContact(grpc::CallbackServerContext* context,
                                          const v1::UnlinkDealContactRequest* request,
                                          v1::Deal* response) override;
  grpc::ServerUnaryReactor* SetCompany(grpc::CallbackServerContext* context,
                                       const v1::SetDealCompanyRequest* request,
                                       v1::Deal* response) override;
  grpc::ServerUnaryReactor* ClearCompany(grpc::CallbackServerContext* context,
                                         const v1::ClearDealCompanyRequest* request,
                                         v1::Deal* response) override;

 private:
  ApiBackend backend_;
};

/// Admin role only, reading included.
class SettingsApi final : public v1::SettingsService::CallbackService {
 public:
  explicit SettingsApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* GetSettings(grpc::CallbackServerContext* context,
                                        const v1::GetSettingsRequest* request,
                                        v1::CrmSettings* response) override;
  grpc::ServerUnaryReactor* UpdateSettings(grpc::CallbackServerContext* context,
                                           const v1::UpdateSettingsRequest* request,
                                           v1::CrmSettings* response) override;

 private:
  ApiBackend backend_;
};

}  // namespace leadflow::crm
