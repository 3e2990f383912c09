#include "crm-core/api.h"

#include <google/protobuf/util/time_util.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "crm-core/model.h"
#include "identity/identity.h"

namespace leadflow::crm {
namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMaxTextField = 10000;

// What a caller reads when the database refused or failed: the code says what to do, the
// request id finds the details in the log. Never the server's text (constraint names, DETAIL
// lines quoting rows).
std::string DatabaseFailureMessage(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kAlreadyExists:
      return "the record conflicts with an existing one";
    case absl::StatusCode::kFailedPrecondition:
      return "the change is refused by a data rule";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "a value is not acceptable to the database";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return "database unavailable, retry later";
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
      return "the request ran out of time";
    case absl::StatusCode::kOk:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kDoNotUseReservedForFutureExpansionUseDefaultInSwitchInstead_:
      return "internal error";
  }
  return "internal error";
}

// A short id for one call, returned to the caller (message and "request-id" trailer) and
// written with the call's failure in the log.
std::string NewRequestId() {
  thread_local std::mt19937_64 random(std::random_device{}());
  return absl::StrFormat("%016x", random());
}

grpc::Status ToGrpc(const absl::Status& status, const std::string& request_id,
                    std::string_view method) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  const bool from_database = pg::SqlState(status).has_value();
  const bool server_side = from_database || status.code() == absl::StatusCode::kInternal ||
                           status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kUnknown ||
                           status.code() == absl::StatusCode::kDeadlineExceeded ||
                           status.code() == absl::StatusCode::kResourceExhausted;
  // A caller's own mistake (validation, not found, a stale etag) is told as it is; anything the
  // server or the database said stays in the log.
  std::string message =
      server_side ? DatabaseFailureMessage(status.code()) : std::string(status.message());
  if (server_side) {
    spdlog::warn("{} request {} failed: {}", method, request_id, status.ToString());
  } else {
    spdlog::debug("{} request {}: {}", method, request_id, status.ToString());
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      absl::StrCat(message, " (request id ", request_id, ")"));
}

std::chrono::steady_clock::time_point SteadyDeadline(grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  const auto now = std::chrono::system_clock::now();
  if (deadline >= now + std::chrono::hours(24)) {
    return std::chrono::steady_clock::time_point::max();  // no deadline set
  }
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline - now);
}

// A transaction PostgreSQL aborted because of a concurrent one (deadlock 40P01, serialization
// failure 40001): run it again here; ABORTED means "stale etag" to callers.
constexpr int kConflictAttempts = 4;

std::optional<std::string_view> AuthorizationOf(grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto found = metadata.find("authorization");
  if (found == metadata.end()) {
    return std::nullopt;
  }
  return std::string_view(found->second.data(), found->second.size());
}

// Authorises, then runs `body` on a pooled connection within the call's deadline, on the
// executor (never on gRPC's threads), and finishes the call. `response` is cleared before each
// attempt.
grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, std::string_view method,
                              const ApiBackend& backend, Right right,
                              google::protobuf::Message* response,
                              std::function<absl::Status(pqxx::connection&)> body) {
  auto* reactor = context->DefaultReactor();
  const std::string request_id = NewRequestId();
  context->AddTrailingMetadata("request-id", request_id);
  if (absl::Status status = Authorize(backend.keys, AuthorizationOf(context), right);
      !status.ok()) {
    reactor->Finish(ToGrpc(status, request_id, method));
    return reactor;
  }
  const auto deadline = SteadyDeadline(context);
  auto job = [context, method, &backend, response, body = std::move(body), reactor, request_id,
              deadline] {
    absl::Status status;
    for (int attempt = 1;; ++attempt) {
      if (context->IsCancelled()) {
        status = absl::CancelledError("cancelled by the caller");
        break;
      }
      response->Clear();
      status = backend.pool.With(body, deadline);
      if (!status.ok() && std::chrono::steady_clock::now() >= deadline) {
        status = absl::DeadlineExceededError(
            absl::StrCat("deadline exceeded (", status.ToString(), ")"));
        break;
      }
      const bool conflict = status.code() == absl::StatusCode::kAborted &&
                            pg::SqlState(status).has_value() &&
                            pg::ClassifyFailure(status.code()) == pg::FailureKind::kTransient;
      if (!conflict) {
        break;
      }
      if (attempt >= kConflictAttempts) {
        status = absl::UnavailableError(
            absl::StrCat("still conflicting after ", attempt, " attempts: ", status.message()));
        break;
      }
      spdlog::info("{} request {}: transaction conflict ({}), running it again", method, request_id,
                   std::string(status.message()));
    }
    reactor->Finish(ToGrpc(status, request_id, method));
  };
  if (!backend.executor.Submit(std::move(job))) {
    reactor->Finish(ToGrpc(absl::UnavailableError("API queue full"), request_id, method));
  }
  return reactor;
}

Timestamp FromMicros(int64_t micros) { return TimeUtil::MicrosecondsToTimestamp(micros); }

int64_t ToMicros(const Timestamp& timestamp) {
  return TimeUtil::TimestampToMicroseconds(timestamp);
}

absl::Status CheckText(const std::string& field, const std::string& value) {
  if (value.size() > kMaxTextField) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is longer than ", kMaxTextField));
  }
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

// The free-text fields a caller may set on a lead.
absl::Status CheckLeadText(const v1::Lead& lead) {
  for (const auto& [field, value] : {std::pair{"title", lead.title()},
                                     {"first_name", lead.first_name()},
                                     {"last_name", lead.last_name()},
                                     {"company_name", lead.company_name()},
                                     {"city", lead.city()},
                                     {"comments", lead.comments()}}) {
    if (absl::Status status = CheckText(field, value); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

int PageSize(int requested) {
  if (requested <= 0) {
    return kDefaultPageSize;
  }
  return std::min(requested, kMaxPageSize);
}

// One page from rows read with LIMIT page_size + 1 (id first): the extra row only says there
// is a next page.
template <typename Fill>
void FillPage(const pqxx::result& rows, int page_size, Fill fill, std::string* next_page_token) {
  for (size_t i = 0; i < rows.size() && static_cast<int>(i) < page_size; ++i) {
    fill(rows[i]);
  }
  if (static_cast<int>(rows.size()) > page_size) {
    *next_page_token = EncodePageToken(rows[page_size - 1][0].as<int64_t>());
  }
}

// ---- leads ----

// The database spells enum values without their proto prefix: LEAD_STATUS_NEW is "NEW".
// Empty for the UNSPECIFIED value and for numbers the proto does not name.
std::string WithoutPrefix(const std::string& name, absl::string_view prefix) {
  absl::string_view rest = name;
  if (!absl::ConsumePrefix(&rest, prefix) || rest == "UNSPECIFIED") {
    return "";
  }
  return std::string(rest);
}

std::string StatusName(v1::LeadStatus status) {
  return WithoutPrefix(v1::LeadStatus_Name(status), "LEAD_STATUS_");
}

std::string SourceName(v1::LeadSource source) {
  return WithoutPrefix(v1::LeadSource_Name(source), "LEAD_SOURCE_");
}

void FillStringMap(const std::string& json_text,
                   google::protobuf::Map<std::string, std::string>* out) {
  auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (!json.is_object()) {
    return;
  }
  for (const auto& [key, value] : json.items()) {
    (*out)[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
}

void FillStringList(const std::string& json_text,
                    google::protobuf::RepeatedPtrField<std::string>* out) {
  auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (!json.is_array()) {
    return;
  }
  for (const auto& value : json) {
    if (value.is_string()) {
      out->Add(value.get<std::string>());
    }
  }
}

// A row of get_lead / list_leads.
void FillLead(const pqxx::row& row, v1::Lead* lead) {
  lead->set_id(row[0].as<int64_t>());
  lead->set_title(row[1].as<std::string>());
  v1::LeadStatus status = v1::LEAD_STATUS_UNSPECIFIED;
  v1::LeadStatus_Parse("LEAD_STATUS_" + row[2].as<std::string>(), &status);
  lead->set_status(status);
  v1::LeadSource source = v1::LEAD_SOURCE_UNSPECIFIED;
  v1::LeadSource_Parse("LEAD_SOURCE_" + row[3].as<std::string>(), &source);
  lead->set_source(source);
  lead->set_first_name(row[4].as<std::string>());
  lead->set_last_name(row[5].as<std::string>());
  lead->set_company_name(row[6].as<std::string>());
  lead->set_city(row[7].as<std::string>());
  lead->set_comments(row[8].as<std::string>());
  lead->set_responsible_user_id(row[9].as<int64_t>());
  lead->set_repeat_count(row[10].as<int>());
  lead->set_returning(row[11].as<bool>());
  lead->set_previous_lead_id(row[12].as<int64_t>());
  lead->set_source_reference(row[13].as<std::string>());
  FillStringMap(row[14].as<std::string>(), lead->mutable_utm());
  FillStringMap(row[15].as<std::string>(), lead->mutable_custom_fields());
  lead->set_page_url(row[16].as<std::string>());
  lead->set_referrer(row[17].as<std::string>());
  *lead->mutable_create_time() = FromMicros(row[18].as<int64_t>());
  *lead->mutable_update_time() = FromMicros(row[19].as<int64_t>());
  lead->set_etag(row[20].as<std::string>());
  FillStringList(row[21].as<std::string>(), lead->mutable_phones());
  FillStringList(row[22].as<std::string>(), lead->mutable_emails());
}

absl::Status LoadLead(pqxx::transaction_base& work, int64_t id, v1::Lead* lead) {
  pqxx::result rows = work.exec_prepared("get_lead", id);
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
  }
  FillLead(rows[0], lead);
  return absl::OkStatus();
}

absl::Status CheckUserActive(pqxx::transaction_base& work, int64_t user_id) {
  if (user_id != 0 && work.exec_prepared("user_exists", user_id).empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("user ", user_id, " does not exist or is not active"));
  }
  return absl::OkStatus();
}

// ---- activities ----

std::string ActivityTypeName(v1::ActivityType type) {
  return WithoutPrefix(v1::ActivityType_Name(type), "ACTIVITY_TYPE_");
}

// A row of select_activity / list_activities.
void FillActivity(const pqxx::row& row, v1::Activity* activity) {
  activity->set_id(row[0].as<int64_t>());
  v1::ActivityType type = v1::ACTIVITY_TYPE_UNSPECIFIED;
  v1::ActivityType_Parse("ACTIVITY_TYPE_" + row[1].as<std::string>(), &type);
  activity->set_type(type);
  activity->set_owner_type(v1::OWNER_TYPE_LEAD);
  activity->set_owner_id(row[3].as<int64_t>());
  activity->set_subject(row[4].as<std::string>());
  activity->set_description(row[5].as<std::string>());
  activity->set_responsible_user_id(row[6].as<int64_t>());
  activity->set_completed(row[7].as<bool>());
  if (int64_t deadline = row[8].as<int64_t>(); deadline != 0) {
    *activity->mutable_deadline() = FromMicros(deadline);
  }
  *activity->mutable_create_time() = FromMicros(row[9].as<int64_t>());
  if (int64_t completed = row[10].as<int64_t>(); completed != 0) {
    *activity->mutable_complete_time() = FromMicros(completed);
  }
  activity->set_origin_event_id(row[11].as<std::string>());
}

absl::Status LoadActivity(pqxx::transaction_base& work, int64_t id, v1::Activity* activity) {
  pqxx::result rows = work.exec_prepared("select_activity", id);
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("activity ", id, " does not exist"));
  }
  FillActivity(rows[0], activity);
  return absl::OkStatus();
}

// ---- users ----

void FillUser(const pqxx::row& row, v1::User* user) {
  user->set_id(row[0].as<int64_t>());
  user->set_name(row[1].as<std::string>());
  user->set_email(row[2].as<std::string>());
  user->set_active(row[3].as<bool>());
  *user->mutable_create_time() = FromMicros(row[4].as<int64_t>());
}

}  // namespace

std::string EncodePageToken(int64_t after_id) {
  return absl::WebSafeBase64Escape(absl::StrCat("after:", after_id));
}

absl::StatusOr<int64_t> DecodePageToken(const std::string& token) {
  if (token.empty()) {
    return 0;
  }
  std::string decoded;
  int64_t id = 0;
  absl::string_view rest;
  if (!absl::WebSafeBase64Unescape(token, &decoded) ||
      !(rest = decoded, absl::ConsumePrefix(&rest, "after:")) || !absl::SimpleAtoi(rest, &id) ||
      id <= 0) {
    return absl::InvalidArgumentError("page_token is not one this server issued");
  }
  return id;
}

grpc::ServerUnaryReactor* LeadApi::GetLead(grpc::CallbackServerContext* context,
                                           const v1::GetLeadRequest* request, v1::Lead* response) {
  return Run(context, __func__, backend_, Right::kRead, response,
             [=, this](pqxx::connection& connection) {
               pqxx::read_transaction work(connection);
               return LoadLead(work, request->id(), response);
             });
}

grpc::ServerUnaryReactor* LeadApi::ListLeads(grpc::CallbackServerContext* context,
                                             const v1::ListLeadsRequest* request,
                                             v1::ListLeadsResponse* response) {
  return Run(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto after = DecodePageToken(request->page_token());
        if (!after.ok()) {
          return after.status();
        }
        if (request->page_size() < 0) {
          return absl::InvalidArgumentError("page_size must not be negative");
        }
        int page_size = PageSize(request->page_size());
        pqxx::read_transaction work(connection);
        pqxx::result rows = work.exec_prepared(
            "list_leads", StatusName(request->status()), SourceName(request->source()),
            request->responsible_user_id(),
            request->has_created_after() ? ToMicros(request->created_after()) : int64_t{0},
            request->has_created_before() ? ToMicros(request->created_before()) : int64_t{0},
            *after, page_size + 1);
        FillPage(
            rows, page_size, [&](const pqxx::row& row) { FillLead(row, response->add_leads()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* LeadApi::CreateLead(grpc::CallbackServerContext* context,
                                              const v1::CreateLeadRequest* request,
                                              v1::Lead* response) {
  return Run(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Lead& lead = request->lead();
        if (absl::Status text = CheckLeadText(lead); !text.ok()) {
          return text;
        }
        std::string name =
            absl::StrCat(lead.first_name(), lead.first_name().empty() ? "" : " ", lead.last_name());
        std::string title = !lead.title().empty() ? lead.title()
                            : !name.empty()       ? absl::StrCat("Visit – ", name)
                                                  : "";
        if (title.empty()) {
          return absl::InvalidArgumentError("a walk-in lead needs a title or a name");
        }
        std::string status =
            lead.status() == v1::LEAD_STATUS_UNSPECIFIED ? "NEW" : StatusName(lead.status());
        if (status.empty()) {
          return absl::InvalidArgumentError("unknown lead status");
        }
        // Walk-in identities are matched against later inbound traffic: normalise them the same
        // way.
        std::vector<std::string> phones;
        std::vector<std::string> emails;
        for (const std::string& raw : lead.phones()) {
          auto phone = identity::NormalizePhone(raw, default_region_);
          if (!phone.ok()) {
            return absl::InvalidArgumentError(absl::StrCat("phones: ", phone.status().message()));
          }
          phones.push_back(*phone);
        }
        for (const std::string& raw : lead.emails()) {
          auto email = identity::NormalizeEmail(raw);
          if (!email.ok()) {
            return absl::InvalidArgumentError(absl::StrCat("emails: ", email.status().message()));
          }
          emails.push_back(*email);
        }
        pqxx::work work(connection);
        // The same identity locks as the inbound consumer, so an event of this visitor processed
        // meanwhile joins this lead instead of making a second one.
        std::vector<std::string> lock_keys;
        for (const std::string& phone : phones) {
          lock_keys.push_back(IdentityLockKey({"PHONE", phone}));
        }
        for (const std::string& email : emails) {
          lock_keys.push_back(IdentityLockKey({"EMAIL", email}));
        }
        if (!lock_keys.empty()) {
          work.exec_prepared("lock_identities", pg::TextArray(lock_keys));
        }
        int64_t responsible = lead.responsible_user_id();
        if (absl::Status check = CheckUserActive(work, responsible); !check.ok()) {
          return check;
        }
        if (responsible == 0) {
          pqxx::result picked = work.exec_prepared("round_robin_user");
          responsible = picked.empty() ? 0 : picked[0][0].as<int64_t>();
        }
        int64_t id = work.exec_prepared1("insert_lead", title, status, "WALK_IN", lead.first_name(),
                                         lead.last_name(), lead.company_name(), lead.city(),
                                         lead.comments(), responsible)[0]
                         .as<int64_t>();
        for (const std::string& phone : phones) {
          work.exec_prepared("insert_lead_identity", "PHONE", phone, id);
        }
        for (const std::string& email : emails) {
          work.exec_prepared("insert_lead_identity", "EMAIL", email, id);
        }
        absl::Status loaded = LoadLead(work, id, response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* LeadApi::UpdateLead(grpc::CallbackServerContext* context,
                                              const v1::UpdateLeadRequest* request,
                                              v1::Lead* response) {
  return Run(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Lead& lead = request->lead();
        std::set<std::string> paths;
        for (const std::string& path : request->update_mask().paths()) {
          static const std::set<std::string> kUpdatable = {
              "title",        "status", "first_name", "last_name",
              "company_name", "city",   "comments",   "responsible_user_id"};
          if (kUpdatable.count(path) == 0) {
            return absl::InvalidArgumentError(absl::StrCat("field '", path, "' cannot be updated"));
          }
          paths.insert(path);
        }
        if (paths.empty()) {
          return absl::InvalidArgumentError("update_mask names no field");
        }
        auto has = [&](const char* path) { return paths.count(path) != 0; };
        std::string status = StatusName(lead.status());
        if (has("status") && status.empty()) {
          return absl::InvalidArgumentError("status must be a known lead status");
        }
        if (has("title") && lead.title().empty()) {
          return absl::InvalidArgumentError("title cannot be empty");
        }
        if (absl::Status text = CheckLeadText(lead); !text.ok()) {
          return text;
        }
        int64_t expected_version = 0;
        if (!lead.etag().empty() &&
            (!absl::SimpleAtoi(lead.etag(), &expected_version) || expected_version <= 0)) {
          return absl::InvalidArgumentError("etag is not one this server issued");
        }
        pqxx::work work(connection);
        if (has("responsible_user_id")) {
          if (absl::Status check = CheckUserActive(work, lead.responsible_user_id()); !check.ok()) {
            return check;
          }
        }
        pqxx::result updated = work.exec_prepared(
            "update_lead", lead.id(), expected_version, has("title"), lead.title(), has("status"),
            status.empty() ? "NEW" : status, has("first_name"), lead.first_name(), has("last_name"),
            lead.last_name(), has("company_name"), lead.company_name(), has("city"), lead.city(),
            has("comments"), lead.comments(), has("responsible_user_id"),
            lead.responsible_user_id());
        if (updated.empty()) {
          if (work.exec_prepared("lead_exists", lead.id()).empty()) {
            return absl::NotFoundError(absl::StrCat("lead ", lead.id(), " does not exist"));
          }
          return absl::AbortedError("the lead changed since this etag was read; read it again");
        }
        absl::Status loaded = LoadLead(work, lead.id(), response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* ActivityApi::ListActivities(grpc::CallbackServerContext* context,
                                                      const v1::ListActivitiesRequest* request,
                                                      v1::ListActivitiesResponse* response) {
  return Run(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto after = DecodePageToken(request->page_token());
        if (!after.ok()) {
          return after.status();
        }
        if (request->page_size() < 0) {
          return absl::InvalidArgumentError("page_size must not be negative");
        }
        if (request->owner_type() != v1::OWNER_TYPE_UNSPECIFIED && request->owner_id() <= 0) {
          return absl::InvalidArgumentError("owner_id is needed with owner_type");
        }
        int page_size = PageSize(request->page_size());
        pqxx::read_transaction work(connection);
        pqxx::result rows = work.exec_prepared(
            "list_activities", request->owner_type() == v1::OWNER_TYPE_LEAD ? "LEAD" : "",
            request->owner_id(), request->responsible_user_id(),
            static_cast<int>(request->completion()), *after, page_size + 1);
        FillPage(
            rows, page_size,
            [&](const pqxx::row& row) { FillActivity(row, response->add_activities()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ActivityApi::CreateActivity(grpc::CallbackServerContext* context,
                                                      const v1::CreateActivityRequest* request,
                                                      v1::Activity* response) {
  return Run(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Activity& activity = request->activity();
        std::string type = ActivityTypeName(activity.type());
        if (type.empty()) {
          return absl::InvalidArgumentError("type is required (task, email, meeting, call, …)");
        }
        if (activity.owner_type() != v1::OWNER_TYPE_LEAD || activity.owner_id() <= 0) {
          return absl::InvalidArgumentError(
              "an activity needs an owner: owner_type LEAD, owner_id");
        }
        if (activity.subject().empty()) {
          return absl::InvalidArgumentError("subject is required");
        }
        for (const auto& [field, value] :
             {std::pair{"subject", activity.subject()}, {"description", activity.description()}}) {
          if (absl::Status check = CheckText(field, value); !check.ok()) {
            return check;
          }
        }
        pqxx::work work(connection);
        pqxx::result owner = work.exec_prepared("lead_responsible", activity.owner_id());
        if (owner.empty()) {
          return absl::FailedPreconditionError(
              absl::StrCat("lead ", activity.owner_id(), " does not exist"));
        }
        int64_t responsible = activity.responsible_user_id();
        if (absl::Status check = CheckUserActive(work, responsible); !check.ok()) {
          return check;
        }
        if (responsible == 0) {
          responsible = owner[0][0].as<int64_t>();
        }
        int64_t deadline = activity.has_deadline() ? ToMicros(activity.deadline()) : 0;
        int64_t id = work.exec_prepared1("insert_activity", type, "LEAD", activity.owner_id(),
                                         activity.subject(), activity.description(), responsible,
                                         deadline)[0]
                         .as<int64_t>();
        absl::Status loaded = LoadActivity(work, id, response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* ActivityApi::CompleteActivity(grpc::CallbackServerContext* context,
                                                        const v1::CompleteActivityRequest* request,
                                                        v1::Activity* response) {
  return Run(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        pqxx::work work(connection);
        if (work.exec_prepared("complete_activity", request->id()).empty()) {
          return absl::NotFoundError(absl::StrCat("activity ", request->id(), " does not exist"));
        }
        absl::Status loaded = LoadActivity(work, request->id(), response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* UserApi::CreateUser(grpc::CallbackServerContext* context,
                                              const v1::CreateUserRequest* request,
                                              v1::User* response) {
  return Run(
      context, __func__, backend_, Right::kManageUsers, response,
      [=, this](pqxx::connection& connection) {
        const v1::User& user = request->user();
        if (user.name().empty()) {
          return absl::InvalidArgumentError("name is required");
        }
        for (const auto& [field, value] :
             {std::pair{"name", user.name()}, {"email", user.email()}}) {
          if (absl::Status check = CheckText(field, value); !check.ok()) {
            return check;
          }
        }
        pqxx::work work(connection);
        // New users are active unless the request says otherwise with an explicit false… proto3
        // cannot tell "false" from "unset", so a user is created active and deactivated by update.
        int64_t id =
            work.exec_prepared1("insert_user", user.name(), user.email(), true)[0].as<int64_t>();
        FillUser(work.exec_prepared1("select_user", id), response);
        work.commit();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* UserApi::GetUser(grpc::CallbackServerContext* context,
                                           const v1::GetUserRequest* request, v1::User* response) {
  return Run(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        pqxx::read_transaction work(connection);
        pqxx::result rows = work.exec_prepared("select_user", request->id());
        if (rows.empty()) {
          return absl::NotFoundError(absl::StrCat("user ", request->id(), " does not exist"));
        }
        FillUser(rows[0], response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* UserApi::ListUsers(grpc::CallbackServerContext* context,
                                             const v1::ListUsersRequest* request,
                                             v1::ListUsersResponse* response) {
  return Run(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto after = DecodePageToken(request->page_token());
        if (!after.ok()) {
          return after.status();
        }
        if (request->page_size() < 0) {
          return absl::InvalidArgumentError("page_size must not be negative");
        }
        int page_size = PageSize(request->page_size());
        pqxx::read_transaction work(connection);
        // Users are listed in id order (ascending): the token holds the last id of the page.
        pqxx::result rows = work.exec_prepared("list_users", *after, page_size + 1);
        FillPage(
            rows, page_size, [&](const pqxx::row& row) { FillUser(row, response->add_users()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* UserApi::UpdateUser(grpc::CallbackServerContext* context,
                                              const v1::UpdateUserRequest* request,
                                              v1::User* response) {
  return Run(
      context, __func__, backend_, Right::kManageUsers, response,
      [=, this](pqxx::connection& connection) {
        std::set<std::string> paths(request->update_mask().paths().begin(),
                                    request->update_mask().paths().end());
        for (const std::string& path : paths) {
          if (path != "name" && path != "email" && path != "active") {
            return absl::InvalidArgumentError(absl::StrCat("field '", path, "' cannot be updated"));
          }
        }
        if (paths.empty()) {
          return absl::InvalidArgumentError("update_mask names no field");
        }
        const v1::User& user = request->user();
        if (paths.count("name") != 0 && user.name().empty()) {
          return absl::InvalidArgumentError("name cannot be empty");
        }
        for (const auto& [field, value] :
             {std::pair{"name", user.name()}, {"email", user.email()}}) {
          if (absl::Status check = CheckText(field, value); !check.ok()) {
            return check;
          }
        }
        pqxx::work work(connection);
        if (work.exec_prepared("update_user", user.id(), paths.count("name") != 0, user.name(),
                               paths.count("email") != 0, user.email(), paths.count("active") != 0,
                               user.active())
                .empty()) {
          return absl::NotFoundError(absl::StrCat("user ", user.id(), " does not exist"));
        }
        FillUser(work.exec_prepared1("select_user", user.id()), response);
        work.commit();
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
