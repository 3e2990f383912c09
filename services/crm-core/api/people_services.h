#pragma once

// The gRPC services of contacts, companies, their timelines and person search.

#include <string>

#include "crm-core/api/common/call.h"
#include "leadflow/crm/v1/company.grpc.pb.h"
#include "leadflow/crm/v1/contact.grpc.pb.h"
#include "leadflow/crm/v1/history.grpc.pb.h"
#include "leadflow/crm/v1/search.grpc.pb.h"

namespace leadflow::crm {

class ContactApi final : public v1::ContactService::CallbackService {
 public:
  /// Phones without a country code are read as numbers of `default_region`.
  ContactApi(const ApiBackend& backend, std::string default_region)
      : backend_(backend), default_region_(std::move(default_region)) {}
  grpc::ServerUnaryReactor* GetContact(grpc::CallbackServerContext* context,
                                       const v1::GetContactRequest* request,
                                       v1::Contact* response) override;
  grpc::ServerUnaryReactor* ListContacts(grpc::CallbackServerContext* context,
                                         const v1::ListContactsRequest* request,
                                         v1::ListContactsResponse* response) override;
  grpc::ServerUnaryReactor* CreateContact(grpc::CallbackServerContext* context,
                                          const v1::CreateContactRequest* request,
                                          v1::CreateContactResponse* response) override;
  grpc::ServerUnaryReactor* UpdateContact(grpc::CallbackServerContext* context,
                                          const v1::UpdateContactRequest* request,
                                          v1::Contact* response) override;
  grpc::ServerUnaryReactor* DeleteContact(grpc::CallbackServerContext* context,
                                          const v1::DeleteContactRequest* request,
                                          google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* MergeContacts(grpc::CallbackServerContext* context,
                                          const v1::MergeContactsRequest* request,
                                          v1::MergeContactsResponse* response) override;
  grpc::ServerUnaryReactor* LinkCompany(grpc::CallbackServerContext* context,
                                        const v1::LinkCompanyRequest* request,
                                        v1::ContactCompanyLink* response) override;
  grpc::ServerUnaryReactor* UnlinkCompany(grpc::CallbackServerContext* context,
                                          const v1::UnlinkCompanyRequest* request,
                                          google::protobuf::Empty* response) override;

 private:
  ApiBackend backend_;
  std::string default_region_;
};

class CompanyApi final : public v1::CompanyService::CallbackService {
 public:
  CompanyApi(const ApiBackend& backend, std::string default_region)
      : backend_(backend), default_region_(std::move(default_region)) {}
  grpc::ServerUnaryReactor* GetCompany(grpc::CallbackServerContext* context,
                                       const v1::GetCompanyRequest* request,
                                       v1::Company* response) override;
  grpc::ServerUnaryReactor* ListCompanies(grpc::CallbackServerContext* context,
                                          const v1::ListCompaniesRequest* request,
                                          v1::ListCompaniesResponse* response) override;
  grpc::ServerUnaryReactor* CreateCompany(grpc::CallbackServerContext* context,
                                          const v1::CreateCompanyRequest* request,
                                          v1::CreateCompanyResponse* response) override;
  grpc::ServerUnaryReactor* UpdateCompany(grpc::CallbackServerContext* context,
                                          const v1::UpdateCompanyRequest* request,
                                          v1::Company* response) override;
  grpc::ServerUnaryReactor* DeleteCompany(grpc::CallbackServerContext* context,
                                          const v1::DeleteCompanyRequest* request,
                                          google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* MergeCompanies(grpc::CallbackServerContext* context,
                                           const v1::MergeCompaniesRequest* request,
                                           v1::MergeCompaniesResponse* response) override;
  grpc::ServerUnaryReactor* LinkContact(grpc::CallbackServerContext* context,
                                        const v1::LinkContactRequest* request,
                                        v1::ContactCompanyLink* response) override;
  grpc::ServerUnaryReactor* UnlinkContact(grpc::CallbackServerContext* context,
                                          const v1::UnlinkContactRequest* request,
                                          google::protobuf::Empty* response) override;

 private:
  ApiBackend backend_;
  std::string default_region_;
};

class HistoryApi final : public v1::HistoryService::CallbackService {
 public:
  explicit HistoryApi(const ApiBackend& backend) : backend_(backend) {}
  grpc::ServerUnaryReactor* ListHistory(grpc::CallbackServerContext* context,
                                        const v1::ListHistoryRequest* request,
                                        v1::ListHistoryResponse* response) override;

 private:
  ApiBackend backend_;
};

class SearchApi final : public v1::SearchService::CallbackService {
 public:
  SearchApi(const ApiBackend& backend, std::string default_region)
      : backend_(backend), default_region_(std::move(default_region)) {}
  grpc::ServerUnaryReactor* FindByCommunication(grpc::CallbackServerContext* context,
                                                const v1::FindByCommunicationRequest* request,
                                                v1::FindByCommunicationResponse* response) override;
  grpc::ServerUnaryReactor* FindByName(grpc::CallbackServerContext* context,
                                       const v1::FindByNameRequest* request,
                                       v1::FindByNameResponse* response) override;

 private:
  ApiBackend backend_;
  std::string default_region_;
};

}  // namespace leadflow::crm
