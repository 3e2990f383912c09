#include "crm-core/store/deal_repository.h"

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crm-core/domain/history/deal_birth.h"
#include "crm-core/domain/naming/naming.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;

StoredDeal ReadDeal(const pqxx::row& row) {
  StoredDeal deal;
  deal.id = row[0].as<int64_t>();
  deal.title = row[1].as<std::string>();
  deal.pipeline_id = row[2].as<int64_t>();
  deal.stage_id = row[3].as<std::string>();
  deal.semantics =
      domain::ParseSemantics(row[4].as<std::string>()).value_or(domain::Semantics::kProcess);
  deal.amount = {.amount_minor = row[5].as<int64_t>(), .currency = row[6].as<std::string>()};
  deal.company_id = row[7].as<int64_t>();
  deal.responsible_user_id = row[8].as<int64_t>();
  deal.expected_close_date = row[9].as<std::string>();
  deal.source_id = row[10].as<std::string>();
  deal.lead_id = row[11].as<int64_t>();
  deal.last_activity_micros = row[12].as<int64_t>();
  deal.stage_change_micros = row[13].as<int64_t>();
  deal.create_micros = row[14].as<int64_t>();
  deal.update_micros = row[15].as<int64_t>();
  deal.version = row[16].as<int64_t>();
  deal.idle_days = row[17].as<int>();
  const int64_t now_micros = row[18].as<int64_t>();
  for (const auto& id : nlohmann::json::parse(row[19].as<std::string>())) {
    deal.contact_ids.push_back(id.get<int64_t>());
  }
  domain::Stage stage{.id = deal.stage_id, .semantics = deal.semantics};
  if (deal.idle_days > 0) {
    stage.idle_days = deal.idle_days;
  }
  using std::chrono::microseconds;
  using std::chrono::system_clock;
  deal.idle = domain::IsIdle(stage, domain::IsClosed(deal.semantics),
                             system_clock::time_point(microseconds(deal.last_activity_micros)),
                             system_clock::time_point(microseconds(now_micros)));
  return deal;
}

}  // namespace

// ---- pipelines ----

std::optional<int64_t> PipelineRepository::Lock(int64_t id, bool shared) {
  pqxx::result rows = work_.exec_prepared(shared ? "lock_pipeline_shared" : "lock_pipeline", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][0].as<int64_t>();
}

std::optional<StoredPipeline> PipelineRepository::Get(int64_t id) {
  pqxx::result rows = work_.exec_prepared("get_pipeline", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  StoredPipeline stored;
  stored.pipeline.id = rows[0][0].as<int64_t>();
  stored.pipeline.name = rows[0][1].as<std::string>();
  stored.sort = rows[0][2].as<int>();
  stored.version = rows[0][3].as<int64_t>();
  stored.create_micros = rows[0][4].as<int64_t>();
  stored.update_micros = rows[0][5].as<int64_t>();
  for (const auto& row : work_.exec_prepared("get_pipeline_stages", id)) {
    domain::Stage stage{
        .id = row[0].as<std::string>(),
        .name = row[1].as<std::string>(),
        .sort = row[2].as<int>(),
        .semantics =
            domain::ParseSemantics(row[3].as<std::string>()).value_or(domain::Semantics::kProcess)};
    if (int idle = row[4].as<int>(); idle > 0) {
      stage.idle_days = idle;
    }
    stored.deal_counts[stage.id] = row[5].as<int64_t>();
    stored.pipeline.stages.push_back(std::move(stage));
  }
  return stored;
}

std::vector<PipelineRepository::Place> PipelineRepository::List(const std::optional<Place>& after,
                                                                int limit) {
  std::vector<Place> places;
  for (const auto& row :
       work_.exec_prepared("list_pipelines", after.has_value(), after ? after->sort : 0,
                           after ? after->id : 0, limit)) {
    places.push_back({.sort = row[1].as<int>(), .id = row[0].as<int64_t>()});
  }
  return places;
}

int64_t PipelineRepository::Insert(const std::string& name, int sort) {
  return work_.exec_prepared1("insert_pipeline", name, sort)[0].as<int64_t>();
}

void PipelineRepository::Update(int64_t id, const std::string& name, int sort) {
  work_.exec_prepared0("update_pipeline", id, name, sort);
}

void PipelineRepository::SaveStages(const StoredPipeline& stored) {
  std::vector<std::string> ids, names, semantics;
  std::vector<int64_t> sorts, idle_days;
  int sort = 0;
  for (const domain::Stage& stage : stored.pipeline.stages) {
    ids.push_back(stage.id);
    names.push_back(stage.name);
    sorts.push_back(sort += 10);
    semantics.emplace_back(domain::ToString(stage.semantics));
    idle_days.push_back(stage.idle_days.value_or(0));
  }
  const int64_t id = stored.pipeline.id;
  work_.exec_prepared0("delete_missing_stages", id, pg::TextArray(ids));
  work_.exec_prepared0("upsert_stages", id, pg::TextArray(ids), pg::TextArray(names),
                       pg::IntArray(sorts), pg::TextArray(semantics), pg::IntArray(idle_days));
  Update(id, stored.pipeline.name, stored.sort);
}

void PipelineRepository::Delete(int64_t id) { work_.exec_prepared0("delete_pipeline", id); }

int64_t PipelineRepository::CountDeals(int64_t id) {
  return work_.exec_prepared1("count_pipeline_deals", id)[0].as<int64_t>();
}

int64_t PipelineRepository::CountDealsThrough(int64_t id, const std::string& stage_id) {
  return work_.exec_prepared1("count_deals_through_stage", id, stage_id)[0].as<int64_t>();
}

void PipelineRepository::LockNames() { work_.exec_prepared("lock_pipeline_names"); }

bool PipelineRepository::NameTaken(const std::string& name, int64_t except_id) {
  const std::string key = domain::NameKey(name);
  for (const auto& row : work_.exec_prepared("pipeline_names", except_id)) {
    if (domain::NameKey(row[0].as<std::string>()) == key) {
      return true;
    }
  }
  return false;
}

// ---- deals ----

std::optional<StoredDeal> DealRepository::Get(int64_t id) {
  pqxx::result rows = work_.exec_prepared("get_deal", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ReadDeal(rows[0]);
}

std::vector<StoredDeal> DealRepository::List(const Filter& filter, int64_t after_id, int limit) {
  std::vector<StoredDeal> deals;
  for (const auto& row :
       work_.exec_prepared("list_deals", after_id, filter.pipeline_id, filter.stage_id,
                           filter.semantics, filter.responsible_user_id, filter.contact_id,
                           filter.company_id, filter.idle_only, limit)) {
    deals.push_back(ReadDeal(row));
  }
  return deals;
}

std::optional<int64_t> DealRepository::Lock(int64_t id) {
  pqxx::result rows = work_.exec_prepared("lock_deal", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][2].as<int64_t>();
}

int64_t DealRepository::Insert(const StoredDeal& deal, int64_t given_user_id) {
  // The stage history row names who as the timeline does (history_repository.h).
  const int64_t user_id = given_user_id != 0 ? given_user_id : ActingUserScope::Current();
  const int64_t id =
      work_
          .exec_prepared1("insert_deal", deal.title, deal.pipeline_id, deal.stage_id,
                          std::string(domain::ToString(deal.semantics)), deal.amount.amount_minor,
                          deal.amount.currency, deal.company_id, deal.responsible_user_id,
                          deal.expected_close_date, deal.source_id, deal.lead_id,
                          deal.origin_event_id)[0]
          .as<int64_t>();
  for (int64_t contact_id : deal.contact_ids) {
    LinkContact(id, contact_id);
  }
  work_.exec_prepared0("insert_stage_change", id, int64_t{0}, std::string(), deal.pipeline_id,
                       deal.stage_id, user_id, deal.origin_event_id);
  HistoryRecord created = DealCreated(id, deal.pipeline_id, deal.stage_id);
  created.user_id = user_id;
  created.event_id = deal.origin_event_id;
  if (deal.lead_id != 0) {
    created.RelatedTo({EntityKind::kLead, deal.lead_id});  // converted from that lead
  }
  HistoryRepository(work_).Append(created);
  return id;
}

void DealRepository::Update(const StoredDeal& deal) {
  work_.exec_prepared0("update_deal", deal.id, deal.title, deal.amount.amount_minor,
                       deal.amount.currency, deal.responsible_user_id, deal.expected_close_date,
                       deal.source_id);
}

void DealRepository::Move(int64_t id, const domain::StageChange& change,
                          domain::Semantics to_semantics, int64_t given_user_id) {
  const int64_t user_id = given_user_id != 0 ? given_user_id : ActingUserScope::Current();
  work_.exec_prepared0("move_deal", id, change.to_pipeline_id, change.to_stage_id,
                       std::string(domain::ToString(to_semantics)));
  work_.exec_prepared0("insert_stage_change", id, change.from_pipeline_id, change.from_stage_id,
                       change.to_pipeline_id, change.to_stage_id, user_id, std::string());
  HistoryRecord moved = HistoryRecord::Of(EntityKind::kDeal, id, "STAGE_CHANGED");
  moved.field = "stage";
  moved.old_value = StagePlace(change.from_pipeline_id, change.from_stage_id);
  moved.new_value = StagePlace(change.to_pipeline_id, change.to_stage_id);
  moved.user_id = user_id;
  HistoryRepository(work_).Append(moved);
}

void DealRepository::SetCompany(int64_t id, int64_t company_id) {
  work_.exec_prepared0("set_deal_company", id, company_id);
}

void DealRepository::Touch(int64_t id) { work_.exec_prepared0("touch_deal", id); }

void DealRepository::Delete(int64_t id) { work_.exec_prepared0("delete_deal", id); }

bool DealRepository::LinkContact(int64_t id, int64_t contact_id) {
  return work_.exec_prepared("link_deal_contact", id, contact_id).affected_rows() > 0;
}

bool DealRepository::UnlinkContact(int64_t id, int64_t contact_id) {
  return work_.exec_prepared("unlink_deal_contact", id, contact_id).affected_rows() > 0;
}

std::vector<StageChangeRecord> DealRepository::StageHistory(int64_t id, int64_t before_id,
                                                            int limit) {
  std::vector<StageChangeRecord> changes;
  for (const auto& row : work_.exec_prepared("list_stage_changes", id, before_id, limit)) {
    changes.push_back({.id = row[0].as<int64_t>(),
                       .from_pipeline_id = row[1].as<int64_t>(),
                       .from_stage_id = row[2].as<std::string>(),
                       .to_pipeline_id = row[3].as<int64_t>(),
                       .to_stage_id = row[4].as<std::string>(),
                       .user_id = row[5].as<int64_t>(),
                       .event_id = row[6].as<std::string>(),
                       .micros = row[7].as<int64_t>()});
  }
  return changes;
}

// ---- settings ----

int64_t SettingsRepository::Lock() {
  return work_.exec_prepared1("lock_settings")[0].as<int64_t>();
}

std::string SettingsRepository::PageTokenKey() {
  pqxx::result rows = work_.exec_prepared("get_page_token_key");
  return rows.empty() ? std::string() : rows[0][0].as<std::string>();
}

StoredSettings SettingsRepository::Get() {
  StoredSettings settings;
  pqxx::row row = work_.exec_prepared1("get_settings");
  settings.mode = row[0].as<std::string>();
  settings.lead_title_template = row[1].as<std::string>();
  settings.last_name_placeholder = row[2].as<std::string>();
  settings.inbound_pipeline_id = row[3].as<int64_t>();
  settings.repeat_rule = row[4].as<bool>();
  settings.default_currency = row[5].as<std::string>();
  settings.version = row[6].as<int64_t>();
  settings.update_micros = row[7].as<int64_t>();
  for (const auto& queue : work_.exec_prepared("list_channel_queues")) {
    settings.channel_queues[queue[0].as<std::string>()] = queue[1].as<std::string>();
  }
  for (const auto& member : work_.exec_prepared("list_queue_members")) {
    auto& members = settings.queues[member[0].as<std::string>()];
    if (int64_t user = member[1].as<int64_t>(); user != 0) {
      members.push_back(user);
    }
  }
  pqxx::result jobs = work_.exec_prepared("latest_mode_switch_job");
  if (!jobs.empty()) {
    const auto& job = jobs[0];
    settings.mode_switch = ModeSwitchJobRecord{.id = job[0].as<int64_t>(),
                                               .to_mode = job[1].as<std::string>(),
                                               .state = job[2].as<std::string>(),
                                               .total = job[3].as<int64_t>(),
                                               .done = job[4].as<int64_t>(),
                                               .failed = job[5].as<int64_t>(),
                                               .error = job[6].as<std::string>(),
                                               .start_micros = job[7].as<int64_t>(),
                                               .finish_micros = job[8].as<int64_t>(),
                                               .failure = job[10].as<std::string>()};
    for (absl::string_view id : absl::StrSplit(job[9].as<std::string>(), ',', absl::SkipEmpty())) {
      int64_t value = 0;
      if (absl::SimpleAtoi(id, &value)) {
        settings.mode_switch->failed_lead_ids.push_back(value);
      }
    }
  }
  return settings;
}

void SettingsRepository::Update(const StoredSettings& settings, bool channel_queues, bool queues) {
  work_.exec_prepared0("update_settings", settings.mode, settings.lead_title_template,
                       settings.last_name_placeholder, settings.inbound_pipeline_id,
                       settings.repeat_rule, settings.default_currency);
  if (queues) {
    // Only the queues named: one left out keeps its members (a queue emptied by omission would
    // silently rotate its mail and calls over every active user).
    for (const auto& [key, members] : settings.queues) {
      work_.exec_prepared0("ensure_queue", key);
      work_.exec_prepared0("delete_queue_members", key);
      int sort = 0;
      for (int64_t user : members) {
        work_.exec_prepared0("insert_queue_member", key, user, sort += 10);
      }
    }
  }
  if (channel_queues) {
    work_.exec_prepared0("delete_channel_queues");
    for (const auto& [channel, key] : settings.channel_queues) {
      work_.exec_prepared0("ensure_queue", key);
      work_.exec_prepared0("insert_channel_queue", channel, key);
    }
  }
}

bool SettingsRepository::PipelineExists(int64_t id) {
  return !work_.exec_prepared("pipeline_exists", id).empty();
}

bool SettingsRepository::SwitchRunning() {
  return !work_.exec_prepared("running_mode_switch_job").empty();
}

int64_t SettingsRepository::StartModeSwitch(const std::string& to_mode, int64_t user_id) {
  return work_.exec_prepared1("insert_mode_switch_job", to_mode, user_id)[0].as<int64_t>();
}

// ---- conversions ----

std::optional<ConversionRecord> ConversionRepository::FindByRequest(const std::string& request_id) {
  pqxx::result rows = work_.exec_prepared("find_conversion_by_request", request_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ConversionRecord{.lead_id = rows[0][0].as<int64_t>(),
                          .contact_id = rows[0][1].as<int64_t>(),
                          .company_id = rows[0][2].as<int64_t>(),
                          .deal_id = rows[0][3].as<int64_t>(),
                          .produce = rows[0][4].as<std::string>(),
                          .request = rows[0][5].as<std::string>()};
}

std::optional<domain::LeadToConvert> ConversionRepository::LockLead(int64_t lead_id,
                                                                    int64_t* merged_into) {
  pqxx::result rows = work_.exec_prepared("lock_lead_for_conversion", lead_id);
  if (rows.empty()) {
    return std::nullopt;
  }
  const auto& row = rows[0];
  domain::LeadToConvert lead{
      .id = row[0].as<int64_t>(),
      .title = row[1].as<std::string>(),
      .status_id = row[2].as<std::string>(),
      .status_semantics =
          domain::ParseSemantics(row[3].as<std::string>()).value_or(domain::Semantics::kProcess),
      .first_name = row[4].as<std::string>(),
      .last_name = row[5].as<std::string>(),
      .company_name = row[6].as<std::string>(),
      .source_id = row[7].as<std::string>(),
      .responsible_user_id = row[8].as<int64_t>()};
  auto optional_id = [](int64_t id) { return id == 0 ? std::nullopt : std::optional(id); };
  lead.produced = {.contact_id = optional_id(row[9].as<int64_t>()),
                   .company_id = optional_id(row[10].as<int64_t>()),
                   .deal_id = optional_id(row[11].as<int64_t>())};
  *merged_into = row[12].as<int64_t>();
  lead.identities = LeadIdentities(lead_id);
  return lead;
}

std::vector<domain::Identity> ConversionRepository::LeadIdentities(int64_t lead_id) {
  std::vector<domain::Identity> identities;
  for (const auto& identity : work_.exec_prepared("lead_identities_of", lead_id)) {
    const std::string kind = identity[0].as<std::string>();
    identities.push_back({.kind = kind == "PHONE"   ? domain::IdentityKind::kPhone
                                  : kind == "EMAIL" ? domain::IdentityKind::kEmail
                                                    : domain::IdentityKind::kMessenger,
                          .value = identity[1].as<std::string>()});
  }
  return identities;
}

void ConversionRepository::LockRequest(const std::string& request_id) {
  work_.exec_prepared("lock_conversion_request", request_id);
}

bool ConversionRepository::Created(domain::EntityKind kind, int64_t id, int64_t lead_id) {
  return !work_
              .exec_prepared("conversion_created", std::string(domain::ToString(kind)), id, lead_id)
              .empty();
}

int64_t ConversionRepository::InsertContact(const domain::NewContact& contact,
                                            int64_t responsible_user_id,
                                            const std::string& source_id) {
  const domain::PersonSearchKeys keys = domain::PersonKeys(contact.first_name, contact.last_name);
  return work_
      .exec_prepared1("insert_converted_contact", contact.first_name, contact.last_name,
                      keys.first_last, keys.last_first, responsible_user_id, source_id)[0]
      .as<int64_t>();
}

int64_t ConversionRepository::InsertCompany(const domain::NewCompany& company,
                                            int64_t responsible_user_id,
                                            const std::string& source_id) {
  return work_
      .exec_prepared1("insert_converted_company", company.name,
                      domain::StoredSearchKey(company.name), responsible_user_id, source_id)[0]
      .as<int64_t>();
}

void ConversionRepository::AddContactIdentities(int64_t contact_id,
                                                const std::vector<domain::Identity>& identities) {
  for (const domain::Identity& identity : identities) {
    work_.exec_prepared0("add_contact_identity_dd", std::string(domain::ToString(identity.kind)),
                         identity.value, contact_id);
  }
}

void ConversionRepository::AddCompanyIdentities(int64_t company_id,
                                                const std::vector<domain::Identity>& identities) {
  for (const domain::Identity& identity : identities) {
    work_.exec_prepared0("add_company_identity_dd", std::string(domain::ToString(identity.kind)),
                         identity.value, company_id);
  }
}

void ConversionRepository::LinkContactCompany(int64_t contact_id, int64_t company_id) {
  work_.exec_prepared0("link_contact_company_dd", contact_id, company_id);
}

void ConversionRepository::MarkConverted(int64_t lead_id, const std::string& status,
                                         int64_t contact_id, int64_t company_id, int64_t deal_id) {
  work_.exec_prepared0("mark_lead_converted", lead_id, status, contact_id, company_id, deal_id);
}

int64_t ConversionRepository::MoveActivities(int64_t lead_id, domain::EntityKind owner,
                                             int64_t owner_id) {
  return work_
      .exec_prepared("move_lead_activities", lead_id, std::string(domain::ToString(owner)),
                     owner_id)
      .affected_rows();
}

void ConversionRepository::Record(const std::string& request_id, int64_t lead_id,
                                  domain::Produce produce, const domain::Produced& produced,
                                  int64_t user_id, const std::string& request) {
  work_.exec_prepared0("insert_conversion", request_id, lead_id,
                       std::string(domain::ToString(produce)), produced.contact_id.value_or(0),
                       produced.company_id.value_or(0), produced.deal_id.value_or(0), user_id,
                       request);
}

}  // namespace leadflow::crm
