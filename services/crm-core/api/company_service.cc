// CompanyService: companies, their contact links and merges over gRPC. What contacts and
// companies do alike is in people_common.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/filters.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/store/people_repository.h"

namespace leadflow::crm {
namespace {

// A website is an http(s) address with a host: a manager opens it from the card, so
// "javascript:…" or "file:…" is refused rather than turned into a link.
absl::Status CheckWebsite(const std::string& website) {
  if (website.empty()) {
    return absl::OkStatus();
  }
  const std::string lower = absl::AsciiStrToLower(website);
  absl::string_view rest = lower;
  if (!absl::ConsumePrefix(&rest, "https://") && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError("website must be an http:// or https:// address");
  }
  const absl::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || website.find_first_of(" \t\r\n") != std::string::npos) {
    return absl::InvalidArgumentError("website must be an http:// or https:// address");
  }
  return absl::OkStatus();
}

absl::Status CheckCompanyText(const v1::Company& company) {
  if (absl::Status text = CheckPeopleText({{"name", company.name()},
                                           {"industry", company.industry()},
                                           {"website", company.website()},
                                           {"source_id", company.source_id()},
                                           {"comments", company.comments()}},
                                          {"name", "industry", "website"});
      !text.ok()) {
    return text;
  }
  return CheckWebsite(company.website());
}

}  // namespace

grpc::ServerUnaryReactor* CompanyApi::GetCompany(grpc::CallbackServerContext* context,
                                                 const v1::GetCompanyRequest* request,
                                                 v1::Company* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   return LoadRecord<Company>(work, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* CompanyApi::ListCompanies(grpc::CallbackServerContext* context,
                                                    const v1::ListCompaniesRequest* request,
                                                    v1::ListCompaniesResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        PeopleFilter filter{.responsible_user_id = request->responsible_user_id(),
                            .linked_id = request->contact_id()};
        pqxx::read_transaction work(connection);
        for (absl::Status known :
             {CheckFilterUser(work, "responsible_user_id", request->responsible_user_id()),
              CheckFilterRecord(work, "contact_id", domain::EntityKind::kContact,
                                request->contact_id())}) {
          if (!known.ok()) {
            return known;
          }
        }
        FillPage(
            CompanyRepository(work).List(filter, page->after_id, page->limit()), *page,
            [&](const Company& company) { ToProto(company, response->add_companies()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CompanyApi::CreateCompany(grpc::CallbackServerContext* context,
                                                    const v1::CreateCompanyRequest* request,
                                                    v1::CreateCompanyResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Company& in = request->company();
        if (domain::TrimAscii(in.name()).empty()) {
          return absl::InvalidArgumentError("name is required");
        }
        if (absl::Status text = CheckCompanyText(in); !text.ok()) {
          return text;
        }
        auto user = ActingUser(context);
        if (!user.ok()) {
          return user.status();
        }
        auto keys = NormalizeIdentities(in.phones(), in.emails(), in.messengers(), default_region_);
        if (!keys.ok()) {
          return keys.status();
        }
        pqxx::work work(connection);
        Company row{.name = std::string(domain::TrimAscii(in.name())),
                    .industry = in.industry(),
                    .website = in.website(),
                    .responsible_user_id = in.responsible_user_id(),
                    .source_id = in.source_id(),
                    .comments = in.comments()};
        v1::UpsertOutcome outcome = v1::UPSERT_OUTCOME_UNSPECIFIED;
        absl::Status done =
            InsertRecord(work, *user, row, *keys, request->upsert_by_identity(),
                         backend_.max_record_identities, &outcome, response->mutable_company());
        response->set_outcome(outcome);
        return done;
      });
}

grpc::ServerUnaryReactor* CompanyApi::UpdateCompany(grpc::CallbackServerContext* context,
                                                    const v1::UpdateCompanyRequest* request,
                                                    v1::Company* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=, this](pqxx::connection& connection) {
                   const v1::Company& in = request->company();
                   auto paths =
                       UpdatePaths(request->update_mask(),
                                   {"name", "industry", "website", "phones", "emails", "messengers",
                                    "responsible_user_id", "source_id", "comments"},
                                   v1::Company::descriptor());
                   if (!paths.ok()) {
                     return paths.status();
                   }
                   if (paths->count("name") != 0 && domain::TrimAscii(in.name()).empty()) {
                     return absl::InvalidArgumentError("name cannot be blank");
                   }
                   if (absl::Status text = CheckCompanyText(in); !text.ok()) {
                     return text;
                   }
                   return UpdateRecord<Company>(
                       connection, context, in, *paths, default_region_,
                       [&](pqxx::transaction_base&, const std::function<bool(const char*)>& has,
                           const Company& current, Company& next, const ChangeFn& change) {
                         if (has("name")) next.name = std::string(domain::TrimAscii(in.name()));
                         if (has("industry")) next.industry = in.industry();
                         if (has("website")) next.website = in.website();
                         change("name", current.name, next.name);
                         change("industry", current.industry, next.industry);
                         change("website", current.website, next.website);
                       },
                       response);
                 });
}

grpc::ServerUnaryReactor* CompanyApi::DeleteCompany(grpc::CallbackServerContext* context,
                                                    const v1::DeleteCompanyRequest* request,
                                                    google::protobuf::Empty* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        return DeleteRecord<Company>(connection, context, request->id(), request->etag());
      });
}

grpc::ServerUnaryReactor* CompanyApi::LinkContact(grpc::CallbackServerContext* context,
                                                  const v1::LinkContactRequest* request,
                                                  v1::ContactCompanyLink* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        return LinkContactCompany(
            connection, context, request->contact_id(), request->company_id(),
            request->has_role() ? std::optional<std::string>(request->role()) : std::nullopt,
            response);
      });
}

grpc::ServerUnaryReactor* CompanyApi::UnlinkContact(grpc::CallbackServerContext* context,
                                                    const v1::UnlinkContactRequest* request,
                                                    google::protobuf::Empty* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return UnlinkContactCompany(connection, context, request->contact_id(),
                                               request->company_id());
                 });
}

grpc::ServerUnaryReactor* CompanyApi::MergeCompanies(grpc::CallbackServerContext* context,
                                                     const v1::MergeCompaniesRequest* request,
                                                     v1::MergeCompaniesResponse* response) {
  const size_t max_identities = backend_.max_record_identities;  // copied: no `this` in the lambda
  metrics::Counter* dropped = backend_.fold_recordings_dropped;
  metrics::Family<metrics::Counter>* summarised = backend_.merges_links_summarised;
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        return MergeAndLoad<Company>(connection, context, max_identities, request->kept_id(),
                                     request->folded_ids(), summarised, response, dropped);
      });
}

}  // namespace leadflow::crm
