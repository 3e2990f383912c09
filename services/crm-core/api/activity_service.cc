// ActivityService: activities on any record (lead, contact, company, deal) over gRPC.
#include <google/protobuf/util/time_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm-core/api/call_common.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/filters.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/conversion/conversion.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {
namespace {

// The kind of an owner named "LEAD", "CONTACT", "COMPANY" or "DEAL" (TypeName).
domain::EntityKind OwnerKind(const std::string& type) {
  if (type == "LEAD") return domain::EntityKind::kLead;
  if (type == "CONTACT") return domain::EntityKind::kContact;
  if (type == "COMPANY") return domain::EntityKind::kCompany;
  return domain::EntityKind::kDeal;
}

std::string ActivityTypeName(v1::ActivityType type) {
  return WithoutPrefix(v1::ActivityType_Name(type), "ACTIVITY_TYPE_");
}

void ToProto(const Activity& activity, v1::Activity* out) {
  out->set_id(activity.id);
  v1::ActivityType type = v1::ACTIVITY_TYPE_UNSPECIFIED;
  v1::ActivityType_Parse("ACTIVITY_TYPE_" + activity.type, &type);
  out->set_type(type);
  v1::OwnerType owner_type = v1::OWNER_TYPE_UNSPECIFIED;
  v1::OwnerType_Parse("OWNER_TYPE_" + activity.owner_type, &owner_type);
  out->set_owner_type(owner_type);
  out->set_owner_id(activity.owner_id);
  out->set_subject(activity.subject);
  out->set_description(activity.description);
  out->set_responsible_user_id(activity.responsible_user_id);
  out->set_completed(activity.completed);
  if (activity.deadline_micros) {
    *out->mutable_deadline() = FromMicros(*activity.deadline_micros);
  }
  *out->mutable_create_time() = FromMicros(activity.create_micros);
  if (activity.complete_micros != 0) {
    *out->mutable_complete_time() = FromMicros(activity.complete_micros);
  }
  out->set_origin_event_id(activity.origin_event_id);
  out->set_etag(Etag(activity.version));
  if (activity.call) {
    CallDetailsToProto(*activity.call, out->mutable_call());
  }
}

absl::Status LoadActivity(pqxx::transaction_base& work, int64_t id, v1::Activity* out) {
  std::optional<Activity> activity = ActivityRepository(work).Get(id);
  if (!activity) {
    return domain::NotFound("activity", id);
  }
  ToProto(*activity, out);
  return absl::OkStatus();
}

// An activity id a request names: INVALID_ARGUMENT for none or a negative one, as
// HistoryService's entity.id.
absl::Status CheckId(const std::string& field, int64_t id) {
  if (id == 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (id < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be positive"));
  }
  return absl::OkStatus();
}

// Locks the activity and checks its etag, as LockDeal does for a deal.
absl::Status LockActivity(ActivityRepository& activities, int64_t id, const std::string& etag) {
  auto expected = ParseEtag(etag);
  if (!expected.ok()) {
    return expected.status();
  }
  std::optional<int64_t> version = activities.Lock(id);
  if (!version) {
    return domain::NotFound("activity", id);
  }
  if (*expected != 0 && *expected != *version) {
    return absl::AbortedError(
        absl::StrCat("activity ", id, " changed since it was read (stale etag)"));
  }
  return absl::OkStatus();
}

// A completion time a caller gives (CreateActivity with completed): a time CheckTime takes, and
// not later than the server's clock (what is done was done by now).
absl::Status CheckCompleteTime(const google::protobuf::Timestamp& time) {
  using google::protobuf::util::TimeUtil;
  if (absl::Status check = CheckTime("complete_time", time); !check.ok()) {
    return check;
  }
  const google::protobuf::Timestamp now = TimeUtil::GetCurrentTime();
  if (time > now) {
    return absl::InvalidArgumentError(absl::StrCat(
        "complete_time ", TimeUtil::ToString(time), " is in the future (the server's clock reads ",
        TimeUtil::ToString(now), "): an activity logged done was done by now"));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* ActivityApi::GetActivity(grpc::CallbackServerContext* context,
                                                   const v1::GetActivityRequest* request,
                                                   v1::Activity* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   if (absl::Status id = CheckId("id", request->id()); !id.ok()) {
                     return id;
                   }
                   pqxx::read_transaction work(connection);
                   return LoadActivity(work, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* ActivityApi::ListActivities(grpc::CallbackServerContext* context,
                                                      const v1::ListActivitiesRequest* request,
                                                      v1::ListActivitiesResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        // Every filter given is applied or refused, never dropped: an owner_id alone, or an
        // enum value this server does not know (sent by number), would list everyone's.
        if (!v1::OwnerType_IsValid(request->owner_type())) {
          return absl::InvalidArgumentError(absl::StrCat("owner_type ",
                                                         static_cast<int>(request->owner_type()),
                                                         " is not LEAD, CONTACT, COMPANY or DEAL"));
        }
        if (!v1::ListActivitiesRequest::Completion_IsValid(request->completion())) {
          return absl::InvalidArgumentError(absl::StrCat("completion ",
                                                         static_cast<int>(request->completion()),
                                                         " is not ANY, OPEN or COMPLETED"));
        }
        if (request->owner_type() != v1::OWNER_TYPE_UNSPECIFIED && request->owner_id() <= 0) {
          return absl::InvalidArgumentError("owner_id is needed with owner_type");
        }
        if (request->owner_type() == v1::OWNER_TYPE_UNSPECIFIED && request->owner_id() != 0) {
          return absl::InvalidArgumentError(
              "owner_type (LEAD, CONTACT, COMPANY or DEAL) is needed with owner_id");
        }
        if (request->responsible_user_id() < 0) {
          return absl::InvalidArgumentError("responsible_user_id must be positive");
        }
        ActivityRepository::Filter filter{
            .owner_type = WithoutPrefix(v1::OwnerType_Name(request->owner_type()), "OWNER_TYPE_"),
            .owner_id = request->owner_id(),
            .responsible_user_id = request->responsible_user_id(),
            .completion = static_cast<ActivityRepository::Completion>(request->completion()),
            .overdue_only = request->overdue_only()};
        pqxx::read_transaction work(connection);
        if (absl::Status user =
                CheckFilterUser(work, "responsible_user_id", request->responsible_user_id());
            !user.ok()) {
          return user;
        }
        if (request->owner_type() != v1::OWNER_TYPE_UNSPECIFIED) {
          const std::string type = TypeName(request->owner_type());
          const domain::EntityKind kind = type == "LEAD"      ? domain::EntityKind::kLead
                                          : type == "CONTACT" ? domain::EntityKind::kContact
                                          : type == "COMPANY" ? domain::EntityKind::kCompany
                                                              : domain::EntityKind::kDeal;
          if (absl::Status owner = CheckFilterRecord(work, "owner_id", kind, request->owner_id());
              !owner.ok()) {
            return owner;
          }
        }
        FillPage(
            ActivityRepository(work).List(filter, page->after_id, page->limit()), *page,
            [&](const Activity& activity) { ToProto(activity, response->add_activities()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ActivityApi::CreateActivity(grpc::CallbackServerContext* context,
                                                      const v1::CreateActivityRequest* request,
                                                      v1::Activity* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        const v1::Activity& activity = request->activity();
        std::string type = ActivityTypeName(activity.type());
        if (type.empty()) {
          return absl::InvalidArgumentError("type is required (task, email, meeting, call, …)");
        }
        const std::string owner_type = TypeName(activity.owner_type());
        if (owner_type.empty() || activity.owner_id() <= 0) {
          return absl::InvalidArgumentError(
              "an activity needs an owner: owner_type (LEAD, CONTACT, COMPANY or DEAL), owner_id");
        }
        if (activity.subject().empty()) {
          return absl::InvalidArgumentError("subject is required");
        }
        if (absl::StripAsciiWhitespace(activity.subject()).empty()) {
          return absl::InvalidArgumentError("subject cannot be blank");
        }
        // A deadline is present or absent (field presence): 1970-01-01T00:00:00Z is a deadline.
        if (activity.has_deadline()) {
          if (absl::Status check = CheckTime("deadline", activity.deadline()); !check.ok()) {
            return check;
          }
        }
        for (const auto& [field, value] :
             {std::pair{"subject", activity.subject()}, {"description", activity.description()}}) {
          if (absl::Status check = CheckText(field, value); !check.ok()) {
            return check;
          }
        }
        // completed true logs what is done already (a call or meeting that happened): stored
        // completed, never silently open. A completion time without it would be dropped: refused.
        if (activity.has_complete_time()) {
          if (!activity.completed()) {
            return absl::InvalidArgumentError(
                "complete_time is given only with completed: true (an open activity has none)");
          }
          if (absl::Status check = CheckCompleteTime(activity.complete_time()); !check.ok()) {
            return check;
          }
        }
        pqxx::work work(connection);
        // The owner held until the commit (HoldLive): a merge folding it either waits and then
        // moves the activity, or committed first and the answer names the kept record.
        if (absl::Status held = HoldLive(work, OwnerKind(owner_type), activity.owner_id());
            !held.ok()) {
          return held;
        }
        std::optional<MergeRepository::Owner> owner =
            MergeRepository(work).Find(owner_type, activity.owner_id());
        const std::string noun = absl::AsciiStrToLower(owner_type);
        // The owner is named in the request: NOT_FOUND as a Get of it would answer.
        if (!owner) {
          return domain::NotFound(noun, activity.owner_id());
        }
        if (owner->merged_into != 0) {
          return absl::NotFoundError(absl::StrCat(noun, " ", activity.owner_id(),
                                                  " not found: merged into ", noun, " ",
                                                  owner->merged_into));
        }
        // A converted lead's person lives on what it produced: a task planned on the lead would
        // be done nowhere anybody works (docs/domain.md, "Guards").
        if (owner_type == "LEAD") {
          const auto products = MergeRepository(work).Products({activity.owner_id()});
          if (auto produced = products.find(activity.owner_id()); produced != products.end()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "lead ", activity.owner_id(), " is converted into ",
                domain::Describe(produced->second),
                ": plan the activity on one of them (owner_type CONTACT, COMPANY or DEAL)"));
          }
        }
        std::optional<int64_t> owner_responsible = owner->responsible_user_id;
        int64_t responsible = activity.responsible_user_id();
        if (absl::Status user = CheckActiveUser(work, responsible, "responsible_user_id");
            !user.ok()) {
          return user;
        }
        if (responsible == 0) {
          responsible = WorkingResponsible(work, owner_responsible.value_or(0));
        }
        int64_t id = ActivityRepository(work).Insert(
            Activity{.type = type,
                     .owner_type = owner_type,
                     .owner_id = activity.owner_id(),
                     .subject = activity.subject(),
                     .description = activity.description(),
                     .responsible_user_id = responsible,
                     .completed = activity.completed(),
                     .deadline_micros = activity.has_deadline()
                                            ? std::optional(ToMicros(activity.deadline()))
                                            : std::nullopt},
            activity.has_complete_time() ? std::optional(ToMicros(activity.complete_time()))
                                         : std::nullopt);
        if (owner_type == "DEAL") {
          TouchDealActivity(work, activity.owner_id());
        }
        absl::Status loaded = LoadActivity(work, id, response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* ActivityApi::UpdateActivity(grpc::CallbackServerContext* context,
                                                      const v1::UpdateActivityRequest* request,
                                                      v1::Activity* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        const v1::Activity& given = request->activity();
        if (absl::Status id = CheckId("activity.id", given.id()); !id.ok()) {
          return id;
        }
        auto paths =
            UpdatePaths(request->update_mask(),
                        {"subject", "description", "deadline", "responsible_user_id", "completed"},
                        v1::Activity::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        auto has = [&](const char* path) { return paths->count(path) != 0; };
        if (has("subject")) {
          if (absl::StripAsciiWhitespace(given.subject()).empty()) {
            return absl::InvalidArgumentError("subject cannot be blank");
          }
          if (absl::Status check = CheckText("subject", given.subject()); !check.ok()) {
            return check;
          }
        }
        if (has("description")) {
          if (absl::Status check = CheckText("description", given.description()); !check.ok()) {
            return check;
          }
        }
        // deadline in the mask and absent from the activity clears it (field presence).
        if (has("deadline") && given.has_deadline()) {
          if (absl::Status check = CheckTime("deadline", given.deadline()); !check.ok()) {
            return check;
          }
        }
        pqxx::work work(connection);
        ActivityRepository activities(work);
        if (absl::Status locked = LockActivity(activities, given.id(), given.etag());
            !locked.ok()) {
          return locked;
        }
        const Activity current = *activities.Get(given.id());
        if (absl::Status allowed = CheckActivityUpdate(current, *paths); !allowed.ok()) {
          return allowed;
        }
        Activity next = current;
        if (has("subject")) next.subject = given.subject();
        if (has("description")) next.description = given.description();
        if (has("deadline")) {
          next.deadline_micros =
              given.has_deadline() ? std::optional(ToMicros(given.deadline())) : std::nullopt;
        }
        if (has("responsible_user_id")) {
          // As CreateActivity: an active user, or 0 for the owner's responsible.
          if (absl::Status user =
                  CheckActiveUser(work, given.responsible_user_id(), "responsible_user_id");
              !user.ok()) {
            return user;
          }
          next.responsible_user_id = given.responsible_user_id();
          if (next.responsible_user_id == 0) {
            std::optional<MergeRepository::Owner> owner =
                MergeRepository(work).Find(current.owner_type, current.owner_id);
            next.responsible_user_id =
                WorkingResponsible(work, owner ? owner->responsible_user_id : 0);
          }
        }
        const bool completion_changed = has("completed") && given.completed() != current.completed;
        if (completion_changed) {
          next.completed = given.completed();
          // A record has at most one open call-back (the missed calls fold into it): reopening
          // a second one is refused, naming the open one, rather than failing on the index.
          if (!next.completed && current.call && current.call->call_back) {
            if (int64_t open =
                    activities.OtherOpenCallBack(current.owner_type, current.owner_id, current.id);
                open != 0) {
              return absl::FailedPreconditionError(
                  absl::StrCat("activity ", current.id, " is a call-back and ",
                               absl::AsciiStrToLower(current.owner_type), " ", current.owner_id,
                               " has an open call-back already (activity ", open,
                               "): a record has one open call-back; complete or delete activity ",
                               open, " first"));
            }
          }
        }
        activities.Update(next, has("deadline"));
        // Completing or reopening a deal's activity is activity on the deal, as CompleteActivity.
        if (completion_changed && current.owner_type == "DEAL") {
          TouchDealActivity(work, current.owner_id);
        }
        absl::Status loaded = LoadActivity(work, current.id, response);
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* ActivityApi::DeleteActivity(grpc::CallbackServerContext* context,
                                                      const v1::DeleteActivityRequest* request,
                                                      google::protobuf::Empty* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        if (absl::Status id = CheckId("id", request->id()); !id.ok()) {
          return id;
        }
        pqxx::work work(connection);
        ActivityRepository activities(work);
        if (absl::Status locked = LockActivity(activities, request->id(), request->etag());
            !locked.ok()) {
          return locked;
        }
        activities.Delete(request->id());
        work.commit();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ActivityApi::CompleteActivity(grpc::CallbackServerContext* context,
                                                        const v1::CompleteActivityRequest* request,
                                                        v1::Activity* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        if (absl::Status id = CheckId("id", request->id()); !id.ok()) {
          return id;
        }
        pqxx::work work(connection);
        // Completing a completed activity changes nothing: no new version, and its
        // deal's last activity time stays (a repeated click is no activity).
        const bool completed_now = ActivityRepository(work).Complete(request->id());
        absl::Status loaded = LoadActivity(work, request->id(), response);
        if (loaded.ok() && completed_now && response->owner_type() == v1::OWNER_TYPE_DEAL) {
          TouchDealActivity(work, response->owner_id());
        }
        work.commit();
        return loaded;
      });
}

}  // namespace leadflow::crm
