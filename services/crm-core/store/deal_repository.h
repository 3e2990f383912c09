#pragma once

// Repositories of the deal side of the CRM: pipelines and their stages, deals (with their stage
// history and links), the CRM settings, lead conversions.
// Like repositories.h, each works over the caller's transaction.

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/domain/common/types.h"
#include "crm-core/domain/conversion/conversion.h"
#include "crm-core/domain/deal/deal.h"
#include "crm-core/domain/pipeline/pipeline.h"
#include "crm-core/store/history_repository.h"

namespace leadflow::crm {

struct StoredPipeline {
  domain::Pipeline pipeline;
  int sort = 0;
  int64_t version = 0;
  int64_t create_micros = 0;
  int64_t update_micros = 0;
  std::map<std::string, int64_t> deal_counts;  // by stage id
};

class PipelineRepository {
 public:
  explicit PipelineRepository(pqxx::transaction_base& work) : work_(work) {}

  /// Locks the pipeline row until the transaction ends: FOR UPDATE for edits of the pipeline
  /// or its stages, FOR SHARE (shared) for deals entering its stages. Its version, or nullopt
  /// when it does not exist.
  std::optional<int64_t> Lock(int64_t id, bool shared = false);
  std::optional<StoredPipeline> Get(int64_t id);
  /// A pipeline's place in the order pipelines are listed in: by sort, then id.
  struct Place {
    int sort = 0;
    int64_t id = 0;
  };
  /// Places by sort, then id, after `after` (none: from the first). The place is given whole,
  /// not read from the pipeline at it, which a page's reader may have deleted or moved since.
  std::vector<Place> List(const std::optional<Place>& after, int limit);
  int64_t Insert(const std::string& name, int sort);
  /// Sets name and sort and advances the version.
  void Update(int64_t id, const std::string& name, int sort);
  /// Writes the whole stage list (positions rewritten 10, 20, …; stages left out are removed)
  /// and advances the version.
  void SaveStages(const StoredPipeline& stored);
  void Delete(int64_t id);
  int64_t CountDeals(int64_t id);
  /// The deals whose stage history names the stage `stage_id` of the pipeline (entering or
  /// leaving it), whether or not the pipeline still has that stage.
  int64_t CountDealsThrough(int64_t id, const std::string& stage_id);
  /// Serialises pipeline creations and renames until the transaction ends.
  void LockNames();
  /// Whether another pipeline than `except_id` has the same name by domain NameKey.
  bool NameTaken(const std::string& name, int64_t except_id);

 private:
  pqxx::transaction_base& work_;
};

struct StoredDeal {
  int64_t id = 0;
  std::string title;
  int64_t pipeline_id = 0;
  std::string stage_id;
  domain::Semantics semantics = domain::Semantics::kProcess;
  domain::Money amount;
  int64_t company_id = 0;
  int64_t responsible_user_id = 0;
  std::string expected_close_date;
  std::string source_id;
  int64_t lead_id = 0;
  std::string origin_event_id;  // on insert only
  int64_t last_activity_micros = 0;
  int64_t stage_change_micros = 0;
  int64_t create_micros = 0;
  int64_t update_micros = 0;
  int64_t version = 0;
  int idle_days = 0;  // the stage's threshold, 0: none
  bool idle = false;  // domain IsIdle at the database's clock
  std::vector<int64_t> contact_ids;
};

struct StageChangeRecord {
  int64_t id = 0;
  int64_t from_pipeline_id = 0;
  std::string from_stage_id;
  int64_t to_pipeline_id = 0;
  std::string to_stage_id;
  int64_t user_id = 0;
  std::string event_id;
  int64_t micros = 0;
};

class DealRepository {
 public:
  explicit DealRepository(pqxx::transaction_base& work) : work_(work) {}

  std::optional<StoredDeal> Get(int64_t id);
  struct Filter {
    int64_t pipeline_id = 0;
    std::string stage_id;
    std::string semantics;  // "" any, else PROCESS/SUCCESS/FAILURE
    int64_t responsible_user_id = 0;
    int64_t contact_id = 0;
    int64_t company_id = 0;
    bool idle_only = false;
  };
  /// In id order, ids above `after_id`.
  std::vector<StoredDeal> List(const Filter& filter, int64_t after_id, int limit);
  /// Locks the deal row; its version, or nullopt when it does not exist.
  std::optional<int64_t> Lock(int64_t id);
  /// Inserts the deal in its (pipeline, stage, semantics), links its contacts, and records its
  /// creation in the stage history and its timeline. Its id.
  int64_t Insert(const StoredDeal& deal, int64_t user_id);
  /// title, amount, responsible, expected close date, source; advances the version.
  void Update(const StoredDeal& deal);
  /// Writes a planned stage move (not a no-op) with its stage history and timeline entries.
  void Move(int64_t id, const domain::StageChange& change, domain::Semantics to_semantics,
            int64_t user_id);
  void SetCompany(int64_t id, int64_t company_id);
  void Touch(int64_t id);
  void Delete(int64_t id);
  /// False when the pair was linked already / was not linked.
  bool LinkContact(int64_t id, int64_t contact_id);
  bool UnlinkContact(int64_t id, int64_t contact_id);
  std::vector<StageChangeRecord> StageHistory(int64_t id, int64_t before_id, int limit);

 private:
  pqxx::transaction_base& work_;
};

struct ModeSwitchJobRecord {
  int64_t id = 0;
  std::string to_mode;
  std::string state;
  int64_t total = 0;
  int64_t done = 0;
  int64_t failed = 0;
  std::string error;
  int64_t start_micros = 0;
  int64_t finish_micros = 0;
  std::vector<int64_t> failed_lead_ids;  // the first 100 skipped
  std::string failure;                   // why the latest skipped lead failed
};

struct StoredSettings {
  std::string mode = "CLASSIC";
  std::string lead_title_template;
  std::string last_name_placeholder;
  int64_t inbound_pipeline_id = 0;
  bool repeat_rule = true;
  std::string default_currency;
  int64_t version = 0;
  int64_t update_micros = 0;
  std::map<std::string, std::string> channel_queues;
  std::map<std::string, std::vector<int64_t>> queues;  // key → members in order
  std::optional<ModeSwitchJobRecord> mode_switch;
};

class SettingsRepository {
 public:
  explicit SettingsRepository(pqxx::transaction_base& work) : work_(work) {}

  /// Serialises settings updates; the current version.
  int64_t Lock();
  StoredSettings Get();
  /// Writes the row (advancing the version), and, when asked, replaces the channel map, and the
  /// members of each queue in `settings.queues` (created when missing; a queue not in it keeps
  /// its members).
  void Update(const StoredSettings& settings, bool channel_queues, bool queues);
  bool PipelineExists(int64_t id);
  /// True when a mode switch job runs now.
  bool SwitchRunning();
  /// Starts the classic → simple job (total: the open leads now); its id.
  int64_t StartModeSwitch(const std::string& to_mode, int64_t user_id);
  /// The page token key migration 0023 generated; empty when there is none.
  std::string PageTokenKey();

 private:
  pqxx::transaction_base& work_;
};

/// A conversion already made (conversions row).
struct ConversionRecord {
  int64_t lead_id = 0;
  int64_t contact_id = 0;
  int64_t company_id = 0;
  int64_t deal_id = 0;
  std::string produce;
  std::string request;  // the request as it was asked (Record's `request`); empty when unknown
};

class ConversionRepository {
 public:
  explicit ConversionRepository(pqxx::transaction_base& work) : work_(work) {}

  std::optional<ConversionRecord> FindByRequest(const std::string& request_id);
  /// Locks the lead and reads what the conversion plan needs; nullopt when it does not exist.
  /// `merged_into` is set when the lead was folded into another one.
  std::optional<domain::LeadToConvert> LockLead(int64_t lead_id, int64_t* merged_into);
  /// The lead's identities, read without a lock.
  std::vector<domain::Identity> LeadIdentities(int64_t lead_id);
  /// Serialises conversions carrying the same request id (transaction-scoped advisory lock).
  void LockRequest(const std::string& request_id);
  /// Which records of a conversion the conversion created (CREATED entries related to the lead),
  /// for a replayed answer.
  bool Created(domain::EntityKind kind, int64_t id, int64_t lead_id);
  int64_t InsertContact(const domain::NewContact& contact, int64_t responsible_user_id,
                        const std::string& source_id);
  int64_t InsertCompany(const domain::NewCompany& company, int64_t responsible_user_id,
                        const std::string& source_id);
  void AddContactIdentities(int64_t contact_id, const std::vector<domain::Identity>& identities);
  void AddCompanyIdentities(int64_t company_id, const std::vector<domain::Identity>& identities);
  void LinkContactCompany(int64_t contact_id, int64_t company_id);
  void MarkConverted(int64_t lead_id, const std::string& status, int64_t contact_id,
                     int64_t company_id, int64_t deal_id);
  /// Moves the lead's activities to the owner; how many moved.
  int64_t MoveActivities(int64_t lead_id, domain::EntityKind owner, int64_t owner_id);
  /// `request`: the request's parameters as one string, compared when the request id comes back.
  void Record(const std::string& request_id, int64_t lead_id, domain::Produce produce,
              const domain::Produced& produced, int64_t user_id, const std::string& request);

 private:
  pqxx::transaction_base& work_;
};

}  // namespace leadflow::crm
