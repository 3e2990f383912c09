// ContactService: contacts, their company links and merges over gRPC.
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/people_repository.h"

namespace leadflow::crm {
namespace {

void LinkToProto(const CompanyLink& link, v1::ContactCompanyLink* out) {
  out->set_contact_id(link.contact_id);
  out->set_company_id(link.company_id);
  out->set_role(link.role);
  *out->mutable_create_time() = FromMicros(link.create_micros);
}

void ToProto(const Contact& contact, v1::Contact* out) {
  out->set_id(contact.id);
  out->set_first_name(contact.first_name);
  out->set_last_name(contact.last_name);
  for (const IdentityKey& key : contact.identities) {
    if (key.kind == "PHONE") {
      out->add_phones(key.value);
    } else if (key.kind == "EMAIL") {
      out->add_emails(key.value);
    } else {
      out->add_messengers(key.value);
    }
  }
  out->set_position(contact.position);
  out->set_responsible_user_id(contact.responsible_user_id);
  out->set_source_id(contact.source_id);
  out->set_comments(contact.comments);
  for (const CompanyLink& link : contact.companies) {
    LinkToProto(link, out->add_companies());
  }
  for (int64_t deal : contact.deal_ids) {
    out->add_deal_ids(deal);
  }
  *out->mutable_create_time() = FromMicros(contact.create_micros);
  *out->mutable_update_time() = FromMicros(contact.update_micros);
  out->set_etag(Etag(contact.version));
}

// A live contact, or NOT_FOUND (naming the kept contact when it was merged away).
absl::StatusOr<Contact> LiveContact(pqxx::transaction_base& work, int64_t id, bool lock = false) {
  std::optional<Contact> contact = ContactRepository(work).Get(id, lock);
  if (!contact) {
    return absl::NotFoundError(absl::StrCat("contact ", id, " does not exist"));
  }
  if (contact->merged_into != 0) {
    return absl::NotFoundError(absl::StrCat("contact ", id, " was merged into contact ",
                                            contact->merged_into, "; use ", contact->merged_into));
  }
  return *contact;
}

absl::Status LoadContact(pqxx::transaction_base& work, int64_t id, v1::Contact* out) {
  auto contact = LiveContact(work, id);
  if (!contact.ok()) {
    return contact.status();
  }
  ToProto(*contact, out);
  return absl::OkStatus();
}

absl::Status CheckContactText(const v1::Contact& contact) {
  for (const auto& [field, value] : {std::pair{"first_name", contact.first_name()},
                                     {"last_name", contact.last_name()},
                                     {"full_name", contact.full_name()},
                                     {"position", contact.position()},
                                     {"source_id", contact.source_id()},
                                     {"comments", contact.comments()}}) {
    if (absl::Status status = CheckText(field, value); !status.ok()) {
      return status;
    }
  }
  for (const auto& [field, value] : {std::pair{"first_name", contact.first_name()},
                                     {"last_name", contact.last_name()},
                                     {"full_name", contact.full_name()},
                                     {"position", contact.position()}}) {
    if (value.size() > 500) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is longer than 500 bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* ContactApi::GetContact(grpc::CallbackServerContext* context,
                                                 const v1::GetContactRequest* request,
                                                 v1::Contact* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   return LoadContact(work, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* ContactApi::ListContacts(grpc::CallbackServerContext* context,
                                                   const v1::ListContactsRequest* request,
                                                   v1::ListContactsResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   auto page = ParsePage(request->page_size(), request->page_token());
                   if (!page.ok()) {
                     return page.status();
                   }
                   PeopleFilter filter{
                       .responsible_user_id = request->responsible_user_id(),
                       .linked_id = request->company_id(),
                       .created_after_micros =
                           request->has_created_after() ? ToMicros(request->created_after()) : 0,
                       .created_before_micros =
                           request->has_created_before() ? ToMicros(request->created_before()) : 0};
                   pqxx::read_transaction work(connection);
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
        for (const auto& [field, id] :
             {std::pair{"responsible_user_id", row.responsible_user_id}, {"user", *user}}) {
          if (absl::Status check = CheckActiveUser(work, id, field); !check.ok()) {
            return check;
          }
        }
        // The same identity locks as the inbound consumer: whoever holds one of these
        // identities now was committed before us, and nobody adds one until we commit.
        LockIdentityKeys(work, *keys);
        ContactRepository contacts(work);
        if (request->upsert_by_identity()) {
          std::vector<IdentityKey> reachable;
          for (const IdentityKey& key : *keys) {
            if (key.kind != "MESSENGER") {
              reachable.push_back(key);
            }
          }
          std::vector<int64_t> existing = contacts.FindByIdentities(reachable);
          if (!existing.empty()) {
            response->set_outcome(v1::UPSERT_OUTCOME_EXISTING);
            return LoadContact(work, existing.front(), response->mutable_contact());
          }
        }
        const int64_t id = contacts.Insert(row);
        contacts.SetIdentities(id, *keys);
        HistoryRepository(work).Append(HistoryRecord{
            .entity_type = "CONTACT", .entity_id = id, .kind = "CREATED", .user_id = *user});
        response->set_outcome(v1::UPSERT_OUTCOME_CREATED);
        absl::Status loaded = LoadContact(work, id, response->mutable_contact());
        work.commit();
        return loaded;
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
                                  "position", "responsible_user_id", "source_id", "comments"});
        if (!paths.ok()) {
          return paths.status();
        }
        auto has = [&](const char* path) { return paths->count(path) != 0; };
        if (absl::Status text = CheckContactText(in); !text.ok()) {
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
        auto current = LiveContact(work, in.id(), /*lock=*/true);
        if (!current.ok()) {
          return current.status();
        }
        if (*expected_version != 0 && *expected_version != current->version) {
          return absl::AbortedError("the contact changed since this etag was read; read it again");
        }
        for (const auto& [field, id] :
             {std::pair{"responsible_user_id",
                        has("responsible_user_id") ? in.responsible_user_id() : 0},
              {"user", *user}}) {
          if (absl::Status check = CheckActiveUser(work, id, field); !check.ok()) {
            return check;
          }
        }
        Contact next = *current;
        if (has("first_name")) next.first_name = std::string(domain::TrimAscii(in.first_name()));
        if (has("last_name")) {
          next.last_name = domain::LastNameOrPlaceholder(in.last_name(), LastNamePlaceholder(work));
        }
        if (has("position")) next.position = in.position();
        if (has("responsible_user_id")) next.responsible_user_id = in.responsible_user_id();
        if (has("source_id")) next.source_id = in.source_id();
        if (has("comments")) next.comments = in.comments();
        std::vector<IdentityKey> identities;
        for (const char* kind : {"PHONE", "EMAIL", "MESSENGER"}) {
          const char* path = std::string(kind) == "PHONE"   ? "phones"
                             : std::string(kind) == "EMAIL" ? "emails"
                                                            : "messengers";
          const std::vector<IdentityKey>& from = has(path) ? *keys : current->identities;
          for (const IdentityKey& key : from) {
            if (key.kind == kind) identities.push_back(key);
          }
        }
        std::vector<HistoryRecord> history;
        auto change = [&](const std::string& field, const std::string& old_value,
                          const std::string& new_value) {
          RecordChange(history, "CONTACT", in.id(), *user, field, old_value, new_value);
        };
        change("first_name", current->first_name, next.first_name);
        change("last_name", current->last_name, next.last_name);
        change("position", current->position, next.position);
        change("responsible_user_id", std::to_string(current->responsible_user_id),
               std::to_string(next.responsible_user_id));
        change("source_id", current->source_id, next.source_id);
        change("comments", current->comments, next.comments);
        for (const auto& [field, kind] :
             {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}, {"messengers", "MESSENGER"}}) {
          change(field, JoinIdentities(current->identities, kind),
                 JoinIdentities(identities, kind));
        }
        ContactRepository contacts(work);
        if (has("phones") || has("emails") || has("messengers")) {
          LockIdentityKeys(work, identities);
          contacts.SetIdentities(in.id(), identities);
        }
        if (!contacts.Update(next, current->version)) {
          return absl::AbortedError("the contact changed meanwhile; read it again");
        }
        HistoryRepository(work).Append(history);
        absl::Status loaded = LoadContact(work, in.id(), response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* ContactApi::DeleteContact(grpc::CallbackServerContext* context,
                                                    const v1::DeleteContactRequest* request,
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
        auto current = LiveContact(work, request->id(), /*lock=*/true);
        if (!current.ok()) {
          return current.status();
        }
        if (*expected_version != 0 && *expected_version != current->version) {
          return absl::AbortedError("the contact changed since this etag was read; read it again");
        }
        if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
          return check;
        }
        std::vector<HistoryRecord> history{HistoryRecord{.entity_type = "CONTACT",
                                                         .entity_id = request->id(),
                                                         .kind = "DELETED",
                                                         .user_id = *user}};
        for (const CompanyLink& link : current->companies) {
          history.push_back({.entity_type = "COMPANY",
                             .entity_id = link.company_id,
                             .kind = "UNLINKED",
                             .related_type = "CONTACT",
                             .related_id = request->id(),
                             .user_id = *user});
        }
        ContactRepository(work).Delete(request->id());
        HistoryRepository(work).Append(history);
        work.commit();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ContactApi::LinkCompany(grpc::CallbackServerContext* context,
                                                  const v1::LinkCompanyRequest* request,
                                                  v1::ContactCompanyLink* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return LinkContactCompany(connection, context, request->contact_id(),
                                             request->company_id(), request->role(), response);
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
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        std::vector<int64_t> folded(request->folded_ids().begin(), request->folded_ids().end());
        auto done = MergeRecords(connection, context, max_identities, "CONTACT", request->kept_id(),
                                 folded);
        if (!done.ok()) {
          return done.status();
        }
        for (int64_t id : done->folded) {
          response->add_folded_ids(id);
        }
        pqxx::read_transaction work(connection);
        return LoadContact(work, request->kept_id(), response->mutable_kept());
      });
}

}  // namespace leadflow::crm
