// SettingsService: the CRM's settings (admin role). Switching classic → simple records a
// mode_switch_jobs row in the same transaction; the background switch job runs it and writes its
// progress there, which GetSettings shows.
#include <optional>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm-core/api/call_common.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/deal/deal.h"
#include "crm-core/domain/email/thread.h"
#include "crm-core/domain/lead/title.h"
#include "crm-core/domain/matching/matching.h"
#include "crm-core/store/deal_repository.h"
#include "crm-core/store/email_repository.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/repositories.h"
#include "identity/person_name.h"

namespace leadflow::crm {
namespace {

constexpr int kMaxQueues = 200;
constexpr int kMaxQueueMembers = 1000;

v1::CrmMode ModeToProto(const std::string& mode) {
  return mode == "SIMPLE" ? v1::CRM_MODE_SIMPLE : v1::CRM_MODE_CLASSIC;
}

v1::ModeSwitchJob::State StateToProto(const std::string& state) {
  if (state == "RUNNING") return v1::ModeSwitchJob::STATE_RUNNING;
  if (state == "DONE") return v1::ModeSwitchJob::STATE_DONE;
  if (state == "FAILED") return v1::ModeSwitchJob::STATE_FAILED;
  if (state == "CANCELLED") return v1::ModeSwitchJob::STATE_CANCELLED;
  return v1::ModeSwitchJob::STATE_UNSPECIFIED;
}

void ToProto(const StoredSettings& settings, v1::CrmSettings* out) {
  out->set_mode(ModeToProto(settings.mode));
  out->set_lead_title_template(settings.lead_title_template);
  out->set_last_name_placeholder(settings.last_name_placeholder);
  out->set_inbound_pipeline_id(settings.inbound_pipeline_id);
  out->set_repeat_rule(settings.repeat_rule);
  out->set_default_currency(settings.default_currency);
  for (const auto& [channel, key] : settings.channel_queues) {
    (*out->mutable_channel_queues())[channel] = key;
  }
  for (const auto& [key, members] : settings.queues) {
    v1::AssignmentQueue* queue = out->add_queues();
    queue->set_key(key);
    for (int64_t user : members) {
      queue->add_user_ids(user);
    }
  }
  if (settings.mode_switch) {
    const ModeSwitchJobRecord& job = *settings.mode_switch;
    v1::ModeSwitchJob* switch_job = out->mutable_mode_switch();
    switch_job->set_id(job.id);
    switch_job->set_to_mode(ModeToProto(job.to_mode));
    switch_job->set_state(StateToProto(job.state));
    switch_job->set_total(job.total);
    switch_job->set_done(job.done);
    switch_job->set_failed(job.failed);
    switch_job->set_error(job.error);
    for (int64_t lead_id : job.failed_lead_ids) {
      switch_job->add_failed_lead_ids(lead_id);
    }
    switch_job->set_failure(job.failure);
    *switch_job->mutable_start_time() = FromMicros(job.start_micros);
    if (job.finish_micros != 0) {
      *switch_job->mutable_finish_time() = FromMicros(job.finish_micros);
    }
  }
  *out->mutable_update_time() = FromMicros(settings.update_micros);
  out->set_etag(Etag(settings.version));
}

// Nothing a reader sees: white space, or only marks, fillers and format characters (the
// placeholder is a last name, and the title is read in lists).
bool Blank(const std::string& text) { return !identity::HasVisibleCharacter(text); }

absl::Status CheckQueueKey(const std::string& field, const std::string& key) {
  static const std::regex kKey(R"([A-Za-z0-9_:.-]{1,100})");
  if (!std::regex_match(key, kKey)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": queue key ",
                                                   domain::Quoted(key.substr(0, 100)),
                                                   " must be 1–100 of A-Z a-z 0-9 _ : . -"));
  }
  return absl::OkStatus();
}

void AddEmailRoutes(pqxx::transaction_base& work, v1::CrmSettings* out) {
  for (const EmailRoute& route : EmailRepository(work).ListRoutes()) {
    v1::EmailRoute* added = out->add_email_routes();
    added->set_address(route.address);
    added->set_pipeline_id(route.pipeline_id);
    added->set_queue(route.queue);
  }
}

// The email routes given to UpdateSettings, checked: one address of ours each, listed once, an
// existing pipeline that can take deals, a well-formed queue key.
absl::StatusOr<std::vector<EmailRoute>> CheckEmailRoutes(
    const google::protobuf::RepeatedPtrField<v1::EmailRoute>& given, SettingsRepository& settings,
    pqxx::transaction_base& work) {
  if (given.size() > kMaxQueues) {
    return absl::InvalidArgumentError(
        absl::StrCat("email_routes: at most ", kMaxQueues, " addresses"));
  }
  std::vector<EmailRoute> routes;
  std::set<std::string> seen;
  for (const v1::EmailRoute& route : given) {
    const std::string address = domain::NormalizeRouteAddress(route.address());
    if (address.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("email_routes: ", domain::Quoted(route.address().substr(0, 100)),
                       " is not one email address"));
    }
    if (!seen.insert(address).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("email_routes: ", domain::Quoted(address), " is listed twice"));
    }
    if (route.pipeline_id() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("email_routes: ", domain::Quoted(address),
                                                     ": pipeline_id must be positive, or 0"));
    }
    if (route.pipeline_id() > 0) {
      if (!settings.PipelineExists(route.pipeline_id())) {
        return absl::InvalidArgumentError(absl::StrCat("email_routes: ", domain::Quoted(address),
                                                       ": pipeline ", route.pipeline_id(),
                                                       " not found"));
      }
      // Without a PROCESS stage the consumer would fall back to the inbound pipeline silently.
      if (!EmailRepository(work).PipelineTakesDeals(route.pipeline_id())) {
        return absl::InvalidArgumentError(absl::StrCat("email_routes: ", domain::Quoted(address),
                                                       ": pipeline ", route.pipeline_id(),
                                                       " has no open stage for new deals"));
      }
    }
    if (!route.queue().empty()) {
      if (absl::Status valid = CheckQueueKey("email_routes", route.queue()); !valid.ok()) {
        return valid;
      }
    }
    routes.push_back(
        {.address = address, .pipeline_id = route.pipeline_id(), .queue = route.queue()});
  }
  return routes;
}

}  // namespace

grpc::ServerUnaryReactor* SettingsApi::GetSettings(grpc::CallbackServerContext* context,
                                                   const v1::GetSettingsRequest* request,
                                                   v1::CrmSettings* response) {
  (void)request;
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        pqxx::read_transaction work(connection);
        ToProto(SettingsRepository(work).Get(), response);
        AddEmailRoutes(work, response);
        CallSettingsToProto(CallRepository(work).GetSettings(), response->mutable_calls());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SettingsApi::UpdateSettings(grpc::CallbackServerContext* context,
                                                      const v1::UpdateSettingsRequest* request,
                                                      v1::CrmSettings* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto paths = UpdatePaths(request->update_mask(),
                                 {"mode", "lead_title_template", "last_name_placeholder",
                                  "inbound_pipeline_id", "repeat_rule", "default_currency",
                                  "channel_queues", "queues", "email_routes", "calls"},
                                 v1::CrmSettings::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        auto expected = ParseEtag(request->settings().etag());
        if (!expected.ok()) {
          return expected.status();
        }
        const v1::CrmSettings& given = request->settings();
        auto has = [&](const char* path) { return paths->count(path) != 0; };
        pqxx::work work(connection);
        SettingsRepository settings(work);
        const int64_t version = settings.Lock();
        if (*expected != 0 && *expected != version) {
          return absl::AbortedError("the settings changed since they were read (stale etag)");
        }
        StoredSettings updated = settings.Get();
        const std::string previous_mode = updated.mode;
        if (has("mode")) {
          if (given.mode() == v1::CRM_MODE_CLASSIC) {
            updated.mode = "CLASSIC";
          } else if (given.mode() == v1::CRM_MODE_SIMPLE) {
            updated.mode = "SIMPLE";
          } else {
            return absl::InvalidArgumentError("mode must be CRM_MODE_CLASSIC or CRM_MODE_SIMPLE");
          }
        }
        if (has("lead_title_template")) {
          if (Blank(given.lead_title_template()) || given.lead_title_template().size() > 500) {
            return absl::InvalidArgumentError(
                "lead_title_template must be non-blank and at most 500 bytes");
          }
          if (std::optional<std::string> unknown =
                  UnknownPlaceholder(given.lead_title_template())) {
            return absl::InvalidArgumentError(
                absl::StrCat("lead_title_template: unknown placeholder {", *unknown,
                             "}; known: {city}, {company}, {form}, {name}, {need}"));
          }
          updated.lead_title_template = given.lead_title_template();
        }
        if (has("last_name_placeholder")) {
          // It becomes the last name of contacts: text a contact's last name may hold.
          if (Blank(given.last_name_placeholder()) ||
              given.last_name_placeholder().size() > domain::kMaxLabelBytes) {
            return absl::InvalidArgumentError(
                absl::StrCat("last_name_placeholder must be non-blank and at most ",
                             domain::kMaxLabelBytes, " bytes"));
          }
          if (absl::Status text = CheckText("last_name_placeholder", given.last_name_placeholder());
              !text.ok()) {
            return text;
          }
          updated.last_name_placeholder = given.last_name_placeholder();
        }
        if (has("inbound_pipeline_id")) {
          if (!settings.PipelineExists(given.inbound_pipeline_id())) {
            return absl::InvalidArgumentError(absl::StrCat(
                "inbound_pipeline_id: pipeline ", given.inbound_pipeline_id(), " not found"));
          }
          updated.inbound_pipeline_id = given.inbound_pipeline_id();
        }
        if (has("repeat_rule")) {
          updated.repeat_rule = given.repeat_rule();
        }
        if (has("default_currency")) {
          if (!domain::IsKnownCurrency(given.default_currency())) {
            return absl::InvalidArgumentError(absl::StrCat(
                "default_currency: ", domain::Quoted(given.default_currency().substr(0, 10)),
                " is not an ISO 4217 code"));
          }
          updated.default_currency = given.default_currency();
        }
        if (has("channel_queues")) {
          if (given.channel_queues_size() > kMaxQueues) {
            return absl::InvalidArgumentError(
                absl::StrCat("channel_queues: at most ", kMaxQueues, " channels"));
          }
          // A channel is what inbound traffic and the API name their records' source by: a lead
          // source id, or API. Any other key (a typo) would be stored and never read, the
          // channel rotating over its default queue with no word said.
          static const std::regex kChannel(R"([A-Z_]{1,50})");
          std::set<std::string> channels{domain::kApiChannel};
          for (const StatusEntry& source : StatusRepository(work, StatusKind::kSource).List()) {
            channels.insert(source.id);
          }
          updated.channel_queues.clear();
          for (const auto& [channel, key] : given.channel_queues()) {
            // channel_queues' CHECK (0004) takes no digits: a source such as FAIR_2026 has no
            // queue of its own yet (its leads rotate over channel:FAIR_2026).
            if (!std::regex_match(channel, kChannel)) {
              return absl::InvalidArgumentError(absl::StrCat("channel_queues: channel ",
                                                             domain::Quoted(channel.substr(0, 50)),
                                                             " must be 1–50 of A-Z _"));
            }
            if (channels.count(channel) == 0) {
              return absl::InvalidArgumentError(
                  absl::StrCat("channel_queues: channel ", domain::Quoted(channel.substr(0, 50)),
                               " is neither a lead source nor API; the channels are ",
                               absl::StrJoin(channels, ", ")));
            }
            if (absl::Status valid = CheckQueueKey("channel_queues", key); !valid.ok()) {
              return valid;
            }
            updated.channel_queues[channel] = key;
          }
        }
        if (has("queues")) {
          if (given.queues_size() > kMaxQueues) {
            return absl::InvalidArgumentError(
                absl::StrCat("queues: at most ", kMaxQueues, " queues"));
          }
          // The queues listed, each with its members as given (none: every active user); a
          // queue not listed keeps its members (docs/api.md, SettingsService).
          updated.queues.clear();
          UserRepository users(work);
          for (const v1::AssignmentQueue& queue : given.queues()) {
            if (absl::Status valid = CheckQueueKey("queues", queue.key()); !valid.ok()) {
              return valid;
            }
            if (updated.queues.count(queue.key()) != 0) {
              return absl::InvalidArgumentError(
                  absl::StrCat("queues: ", domain::Quoted(queue.key()), " is listed twice"));
            }
            if (queue.user_ids_size() > kMaxQueueMembers) {
              return absl::InvalidArgumentError(
                  absl::StrCat("queues: ", domain::Quoted(queue.key()), " has more than ",
                               kMaxQueueMembers, " members"));
            }
            std::vector<int64_t>& members = updated.queues[queue.key()];
            for (int64_t user : queue.user_ids()) {
              if (std::find(members.begin(), members.end(), user) != members.end()) {
                return absl::InvalidArgumentError(absl::StrCat(
                    "queues: user ", user, " is listed twice in ", domain::Quoted(queue.key())));
              }
              if (!users.IsActive(user)) {
                return absl::FailedPreconditionError(
                    absl::StrCat("queues: user ", user, " not found or not active"));
              }
              members.push_back(user);
            }
          }
        }
        std::optional<std::vector<EmailRoute>> email_routes;
        if (has("email_routes")) {
          auto checked = CheckEmailRoutes(given.email_routes(), settings, work);
          if (!checked.ok()) {
            return checked.status();
          }
          email_routes = std::move(*checked);
        }
        if (previous_mode != updated.mode && settings.SwitchRunning()) {
          return absl::FailedPreconditionError(
              "a mode switch job is running; wait until it finishes (GetSettings shows its "
              "progress)");
        }
        CallRepository calls(work);
        if (has("calls")) {
          StoredCallSettings call_settings = calls.GetSettings();
          if (absl::Status valid = CallSettingsFromProto(given.calls(), call_settings);
              !valid.ok()) {
            return valid;
          }
          calls.UpdateSettings(call_settings, true);
        }
        settings.Update(updated, has("channel_queues"), has("queues"));
        if (email_routes) {
          EmailRepository(work).ReplaceRoutes(*email_routes);
        }
        if (previous_mode == "CLASSIC" && updated.mode == "SIMPLE") {
          settings.StartModeSwitch("SIMPLE", ActingUserScope::Current());  // who started it
        }
        ToProto(settings.Get(), response);
        AddEmailRoutes(work, response);
        CallSettingsToProto(calls.GetSettings(), response->mutable_calls());
        work.commit();
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
