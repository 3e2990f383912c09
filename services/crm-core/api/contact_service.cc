// ContactService: contacts, their company links and merges over gRPC. What contacts and
// companies do alike is in people_common.
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/filters.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/people_repository.h"

namespace leadflow::crm {
namespace {

absl::Status CheckContactText(const v1::Contact& contact) {
  return CheckPeopleText({{"first_name", contact.first_name()},
                          {"last_name", contact.last_name()},
                          {"full_name", contact.full_name()},
                          {"position", contact.position()},
                          {"source_id", contact.source_id()},
                          {"comments", contact.comments()}},
                         {"first_name", "last_name", "full_name", "position"});
}

}  // namespace

grpc::ServerUnaryReactor* ContactApi::GetContact(grpc::CallbackServerContext* context,
                                                 const v1::GetContactRequest* request,
                                                 v1::Contact* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   return LoadRecord<Contact>(work, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* ContactApi::ListContacts(grpc::CallbackServerContext* context,
                                                   const v1::ListContactsRequest* request,
                                                   v1::ListContactsResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        if (absl::Status range = CheckCreatedRange(*request); !range.ok()) {
          return range;
        }
        PeopleFilter filter{
            .responsible_user_id = request->responsible_user_id(),
            .linked_id = request->company_id(),
            .created_after_micros =
                request->has_created_after() ? ToMicros(request->created_after()) : 0,
            .created_before_micros =
                request->has_created_before() ? ToMicros(request->created_before()) : 0};
        pqxx::read_transaction work(connection);
        for (absl::Status known :
             {CheckFilterUser(work, "responsible_user_id", request->responsible_user_id()),
              CheckFilterRecord(work, "company_id", domain::EntityKind::kCompany,
                                request->company_id())}) {
          if (!known.ok()) {
            return known;
          }
        }
        FillPage(
            ContactRepository(work).List(filter, page->after_id, page->limit()), *page,
            [&](const Contact& contact) { ToProto(contact, response->add_contacts()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ContactApi::CreateContact(grpc::CallbackServerContext* context,
                                                    const v1::CreateContactRequest* request,
                                                    v1::CreateContactResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Contact& in = request->contact();
        if (absl::Status text = CheckContactText(in); !text.ok()) {
          return text;
        }
        if (!in.full_name().empty() && (!in.first_name().empty() || !in.last_name().empty())) {
          return absl::InvalidArgumentError(
              "full_name is split into first_name and last_name: give either full_name or them");
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
        const std::string placeholder = LastNamePlaceholder(work);
        Contact row{.position = in.position(),
                    .responsible_user_id = in.responsible_user_id(),
                    .source_id = in.source_id(),
                    .comments = in.comments()};
        if (!in.full_name().empty()) {
          domain::PersonName name = domain::SplitName(in.full_name(), placeholder);
          row.first_name = name.first;
          row.last_name = name.last;
        } else {
          row.first_name = std::string(domain::TrimAscii(in.first_name()));
          row.last_name = domain::LastNameOrPlaceholder(in.last_name(), placeholder);
        }
        if (row.first_name.empty() && row.last_name == placeholder && keys->empty()) {
          return absl::InvalidArgumentError(
              "a contact needs a name (first_name, last_name or full_name) or a way to reach it");
        }
        v1::UpsertOutcome outcome = v1::UPSERT_OUTCOME_UNSPECIFIED;
        absl::Status done =
            InsertRecord(work, *user, row, *keys, request->upsert_by_identity(),
                         backend_.max_record_identities, &outcome, response->mutable_contact());
        response->set_outcome(outcome);
        return done;
      });
}

grpc::ServerUnaryReactor* ContactApi::UpdateContact(grpc::CallbackServerContext* context,
                                                    const v1::UpdateContactRequest* request,
                                                    v1::Contact* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Contact& in = request->contact();
        auto paths = UpdatePaths(request->update_mask(),
                                 {"first_name", "last_name", "phones", "emails", "messengers",
                                  "position", "responsible_user_id", "source_id", "comments"},
                                 v1::Contact::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        if (absl::Status text = CheckContactText(in); !text.ok()) {
          return text;
        }
        // A first name is given or not at creation; once named, it is changed, never blanked
        // (a blank last name is the placeholder, as at creation).
        if (paths->count("first_name") != 0 && domain::TrimAscii(in.first_name()).empty()) {
          return absl::InvalidArgumentError("first_name cannot be blank");
        }
        return UpdateRecord<Contact>(
            connection, context, in, *paths, default_region_,
            [&](pqxx::transaction_base& work, const std::function<bool(const char*)>& has,
                const Contact& current, Contact& next, const ChangeFn& change) {
              if (has("first_name")) {
                next.first_name = std::string(domain::TrimAscii(in.first_name()));
              }
              if (has("last_name")) {
                next.last_name =
                    domain::LastNameOrPlaceholder(in.last_name(), LastNamePlaceholder(work));
              }
              if (has("position")) next.position = in.position();
              change("first_name", current.first_name, next.first_name);
              change("last_name", current.last_name, next.last_name);
              change("position", current.position, next.position);
            },
            response);
      });
}

grpc::ServerUnaryReactor* ContactApi::DeleteContact(grpc::CallbackServerContext* context,
                                                    const v1::DeleteContactRequest* request,
                                                    google::protobuf::Empty* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        return DeleteRecord<Contact>(connection, context, request->id(), request->etag());
      });
}

grpc::ServerUnaryReactor* ContactApi::LinkCompany(grpc::CallbackServerContext* context,
                                                  const v1::LinkCompanyRequest* request,
                                                  v1::ContactCompanyLink* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        return LinkContactCompany(
            connection, context, request->contact_id(), request->company_id(),
            request->has_role() ? std::optional<std::string>(request->role()) : std::nullopt,
            response);
      });
}

grpc::ServerUnaryReactor* ContactApi::UnlinkCompany(grpc::CallbackServerContext* context,
                                                    const v1::UnlinkCompanyRequest* request,
                                                    google::protobuf::Empty* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return UnlinkContactCompany(connection, context, request->contact_id(),
                                               request->company_id());
                 });
}

grpc::ServerUnaryReactor* ContactApi::MergeContacts(grpc::CallbackServerContext* context,
                                                    const v1::MergeContactsRequest* request,
                                                    v1::MergeContactsResponse* response) {
  const size_t max_identities = backend_.max_record_identities;  // copied: no `this` in the lambda
  metrics::Counter* dropped = backend_.fold_recordings_dropped;
  metrics::Family<metrics::Counter>* summarised = backend_.merges_links_summarised;
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        return MergeAndLoad<Contact>(connection, context, max_identities, request->kept_id(),
                                     request->folded_ids(), summarised, response, dropped);
      });
}

}  // namespace leadflow::crm
