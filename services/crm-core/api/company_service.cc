// CompanyService: companies, their contact links and merges over gRPC.
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/store/people_repository.h"

namespace leadflow::crm {
namespace {

void ToProto(const Company& company, v1::Company* out) {
  out->set_id(company.id);
  out->set_name(company.name);
  out->set_industry(company.industry);
  out->set_website(company.website);
  for (const IdentityKey& key : company.identities) {
    if (key.kind == "PHONE") {
      out->add_phones(key.value);
    } else if (key.kind == "EMAIL") {
      out->add_emails(key.value);
    } else {
      out->add_messengers(key.value);
    }
  }
  out->set_responsible_user_id(company.responsible_user_id);
  out->set_source_id(company.source_id);
  out->set_comments(company.comments);
  for (const CompanyLink& link : company.contacts) {
    v1::ContactCompanyLink* shown = out->add_contacts();
    shown->set_contact_id(link.contact_id);
    shown->set_company_id(link.company_id);
    shown->set_role(link.role);
    *shown->mutable_create_time() = FromMicros(link.create_micros);
  }
  for (int64_t deal : company.deal_ids) {
    out->add_deal_ids(deal);
  }
  *out->mutable_create_time() = FromMicros(company.create_micros);
  *out->mutable_update_time() = FromMicros(company.update_micros);
  out->set_etag(Etag(company.version));
}

absl::StatusOr<Company> LiveCompany(pqxx::transaction_base& work, int64_t id, bool lock = false) {
  std::optional<Company> company = CompanyRepository(work).Get(id, lock);
  if (!company) {
    return absl::NotFoundError(absl::StrCat("company ", id, " does not exist"));
  }
  if (company->merged_into != 0) {
    return absl::NotFoundError(absl::StrCat("company ", id, " was merged into company ",
                                            company->merged_into, "; use ", company->merged_into));
  }
  return *company;
}

absl::Status LoadCompany(pqxx::transaction_base& work, int64_t id, v1::Company* out) {
  auto company = LiveCompany(work, id);
  if (!company.ok()) {
    return company.status();
  }
  ToProto(*company, out);
  return absl::OkStatus();
}

absl::Status CheckCompanyText(const v1::Company& company) {
  for (const auto& [field, value] : {std::pair{"name", company.name()},
                                     {"industry", company.industry()},
                                     {"website", company.website()},
                                     {"source_id", company.source_id()},
                                     {"comments", company.comments()}}) {
    if (absl::Status status = CheckText(field, value); !status.ok()) {
      return status;
    }
  }
  for (const auto& [field, value] : {std::pair{"name", company.name()},
                                     {"industry", company.industry()},
                                     {"website", company.website()}}) {
    if (value.size() > 500) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is longer than 500 bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* CompanyApi::GetCompany(grpc::CallbackServerContext* context,
                                                 const v1::GetCompanyRequest* request,
                                                 v1::Company* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   return LoadCompany(work, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* CompanyApi::ListCompanies(grpc::CallbackServerContext* context,
                                                    const v1::ListCompaniesRequest* request,
                                                    v1::ListCompaniesResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   auto page = ParsePage(request->page_size(), request->page_token());
                   if (!page.ok()) {
                     return page.status();
                   }
                   PeopleFilter filter{.responsible_user_id = request->responsible_user_id(),
                                       .linked_id = request->contact_id()};
                   pqxx::read_transaction work(connection);
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
        for (const auto& [field, id] :
             {std::pair{"responsible_user_id", in.responsible_user_id()}, {"user", *user}}) {
          if (absl::Status check = CheckActiveUser(work, id, field); !check.ok()) {
            return check;
          }
        }
        LockIdentityKeys(work, *keys);
        CompanyRepository companies(work);
        if (request->upsert_by_identity()) {
          std::vector<IdentityKey> reachable;
          for (const IdentityKey& key : *keys) {
            if (key.kind != "MESSENGER") reachable.push_back(key);
          }
          std::vector<int64_t> existing = companies.FindByIdentities(reachable);
          if (!existing.empty()) {
            response->set_outcome(v1::UPSERT_OUTCOME_EXISTING);
            return LoadCompany(work, existing.front(), response->mutable_company());
          }
        }
        const int64_t id =
            companies.Insert(Company{.name = std::string(domain::TrimAscii(in.name())),
                                     .industry = in.industry(),
                                     .website = in.website(),
                                     .responsible_user_id = in.responsible_user_id(),
                                     .source_id = in.source_id(),
                                     .comments = in.comments()});
        companies.SetIdentities(id, *keys);
        HistoryRepository(work).Append(HistoryRecord{
            .entity_type = "COMPANY", .entity_id = id, .kind = "CREATED", .user_id = *user});
        response->set_outcome(v1::UPSERT_OUTCOME_CREATED);
        absl::Status loaded = LoadCompany(work, id, response->mutable_company());
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* CompanyApi::UpdateCompany(grpc::CallbackServerContext* context,
                                                    const v1::UpdateCompanyRequest* request,
                                                    v1::Company* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Company& in = request->company();
        auto paths = UpdatePaths(request->update_mask(),
                                 {"name", "industry", "website", "phones", "emails", "messengers",
                                  "responsible_user_id", "source_id", "comments"});
        if (!paths.ok()) {
          return paths.status();
        }
        auto has = [&](const char* path) { return paths->count(path) != 0; };
        if (has("name") && domain::TrimAscii(in.name()).empty()) {
          return absl::InvalidArgumentError("name cannot be blank");
        }
        if (absl::Status text = CheckCompanyText(in); !text.ok()) {
          return text;
        }
        auto expected_version = ParseEtag(in.etag());
        if (!expected_version.ok()) {
          return expected_version.status();
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
        auto current = LiveCompany(work, in.id(), /*lock=*/true);
        if (!current.ok()) {
          return current.status();
        }
        if (*expected_version != 0 && *expected_version != current->version) {
          return absl::AbortedError("the company changed since this etag was read; read it again");
        }
        for (const auto& [field, id] :
             {std::pair{"responsible_user_id",
                        has("responsible_user_id") ? in.responsible_user_id() : 0},
              {"user", *user}}) {
          if (absl::Status check = CheckActiveUser(work, id, field); !check.ok()) {
            return check;
          }
        }
        Company next = *current;
        if (has("name")) next.name = std::string(domain::TrimAscii(in.name()));
        if (has("industry")) next.industry = in.industry();
        if (has("website")) next.website = in.website();
        if (has("responsible_user_id")) next.responsible_user_id = in.responsible_user_id();
        if (has("source_id")) next.source_id = in.source_id();
        if (has("comments")) next.comments = in.comments();
        std::vector<IdentityKey> identities;
        for (const auto& [path, kind] :
             {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}, {"messengers", "MESSENGER"}}) {
          for (const IdentityKey& key : has(path) ? *keys : current->identities) {
            if (key.kind == kind) identities.push_back(key);
          }
        }
        std::vector<HistoryRecord> history;
        auto change = [&](const std::string& field, const std::string& old_value,
                          const std::string& new_value) {
          RecordChange(history, "COMPANY", in.id(), *user, field, old_value, new_value);
        };
        change("name", current->name, next.name);
        change("industry", current->industry, next.industry);
        change("website", current->website, next.website);
        change("responsible_user_id", std::to_string(current->responsible_user_id),
               std::to_string(next.responsible_user_id));
        change("source_id", current->source_id, next.source_id);
        change("comments", current->comments, next.comments);
        for (const auto& [field, kind] :
             {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}, {"messengers", "MESSENGER"}}) {
          change(field, JoinIdentities(current->identities, kind),
                 JoinIdentities(identities, kind));
        }
        CompanyRepository companies(work);
        if (has("phones") || has("emails") || has("messengers")) {
          LockIdentityKeys(work, identities);
          companies.SetIdentities(in.id(), identities);
        }
        if (!companies.Update(next, current->version)) {
          return absl::AbortedError("the company changed meanwhile; read it again");
        }
        HistoryRepository(work).Append(history);
        absl::Status loaded = LoadCompany(work, in.id(), response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* CompanyApi::DeleteCompany(grpc::CallbackServerContext* context,
                                                    const v1::DeleteCompanyRequest* request,
                                                    google::protobuf::Empty* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        auto expected_version = ParseEtag(request->etag());
        if (!expected_version.ok()) {
          return expected_version.status();
        }
        auto user = ActingUser(context);
        if (!user.ok()) {
          return user.status();
        }
        pqxx::work work(connection);
        auto current = LiveCompany(work, request->id(), /*lock=*/true);
        if (!current.ok()) {
          return current.status();
        }
        if (*expected_version != 0 && *expected_version != current->version) {
          return absl::AbortedError("the company changed since this etag was read; read it again");
        }
        if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
          return check;
        }
        std::vector<HistoryRecord> history{HistoryRecord{.entity_type = "COMPANY",
                                                         .entity_id = request->id(),
                                                         .kind = "DELETED",
                                                         .user_id = *user}};
        for (const CompanyLink& link : current->contacts) {
          history.push_back({.entity_type = "CONTACT",
                             .entity_id = link.contact_id,
                             .kind = "UNLINKED",
                             .related_type = "COMPANY",
                             .related_id = request->id(),
                             .user_id = *user});
        }
        CompanyRepository(work).Delete(request->id());
        HistoryRepository(work).Append(history);
        work.commit();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* CompanyApi::LinkContact(grpc::CallbackServerContext* context,
                                                  const v1::LinkContactRequest* request,
                                                  v1::ContactCompanyLink* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return LinkContactCompany(connection, context, request->contact_id(),
                                             request->company_id(), request->role(), response);
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
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        std::vector<int64_t> folded(request->folded_ids().begin(), request->folded_ids().end());
        auto done = MergeRecords(connection, context, max_identities, "COMPANY", request->kept_id(),
                                 folded);
        if (!done.ok()) {
          return done.status();
        }
        for (int64_t id : done->folded) {
          response->add_folded_ids(id);
        }
        pqxx::read_transaction work(connection);
        return LoadCompany(work, request->kept_id(), response->mutable_kept());
      });
}

}  // namespace leadflow::crm
