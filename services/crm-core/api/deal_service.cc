// DealService: deals in the stages of a pipeline. Stage moves follow domain/deal's
// PlanStageChange and write the stage history (deal_stage_history) and the deal's timeline.
#include <algorithm>
#include <chrono>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/filters.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/deal_common.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/api/people_common.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/history/deal_birth.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {

void DealToProto(const StoredDeal& deal, v1::Deal* out) {
  out->set_id(deal.id);
  out->set_title(deal.title);
  out->set_pipeline_id(deal.pipeline_id);
  out->set_stage_id(deal.stage_id);
  out->set_stage_semantics(SemanticsToProto(deal.semantics));
  out->set_closed(domain::IsClosed(deal.semantics));
  out->mutable_amount()->set_amount_minor(deal.amount.amount_minor);
  out->mutable_amount()->set_currency(deal.amount.currency);
  for (int64_t contact : deal.contact_ids) {
    out->add_contact_ids(contact);
  }
  out->set_company_id(deal.company_id);
  out->set_responsible_user_id(deal.responsible_user_id);
  out->set_expected_close_date(deal.expected_close_date);
  out->set_source_id(deal.source_id);
  out->set_lead_id(deal.lead_id);
  out->set_idle(deal.idle);
  *out->mutable_last_activity_time() = FromMicros(deal.last_activity_micros);
  *out->mutable_stage_change_time() = FromMicros(deal.stage_change_micros);
  *out->mutable_create_time() = FromMicros(deal.create_micros);
  *out->mutable_update_time() = FromMicros(deal.update_micros);
  out->set_etag(Etag(deal.version));
}

namespace {

absl::Status DealNotFound(int64_t id) { return domain::NotFound(domain::EntityKind::kDeal, id); }

// A calendar date PostgreSQL's date type takes: the shape alone let "2026-02-30" through to the
// database, which refused it with a message naming nothing.
absl::Status CheckDate(const std::string& date) {
  static const std::regex kDate(R"((\d{4})-(\d{2})-(\d{2}))");
  std::smatch parts;
  if (date.empty()) {
    return absl::OkStatus();
  }
  if (!std::regex_match(date, parts, kDate)) {
    return absl::InvalidArgumentError("expected_close_date must be YYYY-MM-DD or empty");
  }
  const std::chrono::year_month_day day{std::chrono::year(std::stoi(parts[1].str())),
                                        std::chrono::month(std::stoul(parts[2].str())),
                                        std::chrono::day(std::stoul(parts[3].str()))};
  if (!day.ok() || day.year() < std::chrono::year(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected_close_date ", date, " is not a date of the calendar"));
  }
  if (day.year() < std::chrono::year(kMinYear) || day.year() > std::chrono::year(kMaxYear)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected_close_date ", date, " is not in the years ", kMinYear, " to ", kMaxYear));
  }
  return absl::OkStatus();
}

absl::Status CheckUser(pqxx::transaction_base& work, int64_t user_id) {
  return CheckActiveUser(work, user_id, "responsible_user_id");
}

absl::Status CheckSource(pqxx::transaction_base& work, const std::string& source_id) {
  return CheckSourceId(work, source_id);
}

// Locks the deal and checks its etag.
absl::Status LockDeal(DealRepository& deals, int64_t id, const std::string& etag) {
  auto expected = ParseEtag(etag);
  if (!expected.ok()) {
    return expected.status();
  }
  std::optional<int64_t> version = deals.Lock(id);
  if (!version) {
    return DealNotFound(id);
  }
  if (*expected != 0 && *expected != *version) {
    return absl::AbortedError(absl::StrCat("deal ", id, " changed since it was read (stale etag)"));
  }
  return absl::OkStatus();
}

absl::Status Answer(DealRepository& deals, int64_t id, v1::Deal* response) {
  std::optional<StoredDeal> deal = deals.Get(id);
  if (!deal) {
    return DealNotFound(id);
  }
  DealToProto(*deal, response);
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* DealApi::GetDeal(grpc::CallbackServerContext* context,
                                           const v1::GetDealRequest* request, v1::Deal* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   DealRepository deals(work);
                   return Answer(deals, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* DealApi::ListDeals(grpc::CallbackServerContext* context,
                                             const v1::ListDealsRequest* request,
                                             v1::ListDealsResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        if (!request->stage_id().empty() && request->pipeline_id() == 0) {
          return absl::InvalidArgumentError(
              "stage_id needs pipeline_id (stage ids repeat across pipelines)");
        }
        DealRepository::Filter filter{.pipeline_id = request->pipeline_id(),
                                      .stage_id = request->stage_id(),
                                      .responsible_user_id = request->responsible_user_id(),
                                      .contact_id = request->contact_id(),
                                      .company_id = request->company_id(),
                                      .idle_only = request->idle_only()};
        if (request->semantics() != v1::SEMANTICS_UNSPECIFIED) {
          std::optional<domain::Semantics> semantics = SemanticsFromProto(request->semantics());
          if (!semantics) {
            return absl::InvalidArgumentError("semantics must be PROCESS, SUCCESS or FAILURE");
          }
          filter.semantics = std::string(domain::ToString(*semantics));
        }
        pqxx::read_transaction work(connection);
        for (absl::Status known :
             {CheckFilterPipeline(work, request->pipeline_id()),
              CheckFilterUser(work, "responsible_user_id", request->responsible_user_id()),
              CheckFilterRecord(work, "contact_id", domain::EntityKind::kContact,
                                request->contact_id()),
              CheckFilterRecord(work, "company_id", domain::EntityKind::kCompany,
                                request->company_id())}) {
          if (!known.ok()) {
            return known;
          }
        }
        if (!request->stage_id().empty()) {
          std::optional<StoredPipeline> pipeline =
              PipelineRepository(work).Get(request->pipeline_id());
          if (domain::FindStage(pipeline->pipeline, request->stage_id()) == nullptr) {
            return absl::NotFoundError(absl::StrCat("stage ", domain::Quoted(request->stage_id()),
                                                    " not found in pipeline ",
                                                    request->pipeline_id()));
          }
        }
        FillPage(
            DealRepository(work).List(filter, page->after_id, page->limit()), *page,
            [&](const StoredDeal& deal) { DealToProto(deal, response->add_deals()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* DealApi::CreateDeal(grpc::CallbackServerContext* context,
                                              const v1::CreateDealRequest* request,
                                              v1::Deal* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        const v1::Deal& given = request->deal();
        if (absl::Status text = CheckText("deal.title", given.title()); !text.ok()) {
          return text;
        }
        if (given.title().find_first_not_of(" \t\r\n") == std::string::npos) {
          return absl::InvalidArgumentError("deal.title is required");
        }
        if (absl::Status date = CheckDate(given.expected_close_date()); !date.ok()) {
          return date;
        }
        if (request->contact_ids_size() > domain::kMaxDealContacts) {
          return absl::InvalidArgumentError(
              absl::StrCat("contact_ids: at most ", domain::kMaxDealContacts));
        }
        for (int i = 0; i < request->contact_ids_size(); ++i) {
          if (request->contact_ids(i) <= 0) {
            return absl::InvalidArgumentError(
                absl::StrCat("contact_ids[", i, "] must be a contact id (positive)"));
          }
        }
        if (request->company_id() < 0) {
          return absl::InvalidArgumentError("company_id must be positive, or 0 for none");
        }
        auto user = ActingUser(context);
        if (!user.ok()) {
          return user.status();
        }
        pqxx::work work(connection);
        if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
          return check;
        }
        SettingsRepository settings(work);
        const StoredSettings current = settings.Get();
        StoredDeal deal{
            .title = given.title(),
            .pipeline_id =
                given.pipeline_id() != 0 ? given.pipeline_id() : current.inbound_pipeline_id,
            .amount = {.amount_minor = given.amount().amount_minor(),
                       .currency = given.amount().currency().empty() ? current.default_currency
                                                                     : given.amount().currency()},
            .company_id = request->company_id(),
            .responsible_user_id = given.responsible_user_id(),
            .expected_close_date = given.expected_close_date(),
            .source_id = given.source_id()};
        if (absl::Status money = domain::ValidateMoney(deal.amount); !money.ok()) {
          return money;
        }
        for (absl::Status check :
             {CheckUser(work, deal.responsible_user_id), CheckSource(work, deal.source_id)}) {
          if (!check.ok()) {
            return check;
          }
        }
        PipelineRepository pipelines(work);
        if (!pipelines.Lock(deal.pipeline_id, /*shared=*/true)) {
          return domain::NotFound("pipeline", deal.pipeline_id);
        }
        std::optional<StoredPipeline> pipeline = pipelines.Get(deal.pipeline_id);
        const domain::Stage* stage = given.stage_id().empty()
                                         ? &domain::FirstStage(pipeline->pipeline)
                                         : domain::FindStage(pipeline->pipeline, given.stage_id());
        if (stage == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat("deal.stage_id: ", domain::Quoted(given.stage_id()),
                           " is not a stage of pipeline ", deal.pipeline_id));
        }
        deal.stage_id = stage->id;
        deal.semantics = stage->semantics;
        DealRepository deals(work);
        // The company and contacts held until the commit (HoldLive), the contacts in id order as
        // merges lock them: a merge folding one either waits and then moves the deal's link, or
        // committed first and the answer names the record it went into.
        if (deal.company_id != 0) {
          if (absl::Status held = HoldLive(work, domain::EntityKind::kCompany, deal.company_id);
              !held.ok()) {
            return held;
          }
        }
        std::vector<int64_t> contacts(request->contact_ids().begin(), request->contact_ids().end());
        std::sort(contacts.begin(), contacts.end());
        for (int64_t contact : contacts) {
          if (absl::Status held = HoldLive(work, domain::EntityKind::kContact, contact);
              !held.ok()) {
            return held;
          }
        }
        deal.contact_ids.assign(request->contact_ids().begin(), request->contact_ids().end());
        // Any stage, as Bitrix24 allows: one in a SUCCESS or FAILURE stage is created closed,
        // exactly as if created and moved there at once (docs/domain.md): closed, its stage
        // change time the creation, one stage history row (none → stage) and a CREATED entry
        // naming the stage, both with who.
        const int64_t id = deals.Insert(deal, *user);
        // The links it is created with, on both timelines, as LinkContact and SetCompany write
        // them: a deal created with its company reads like one linked to it afterwards.
        std::vector<HistoryRecord> links;
        auto linked = [&](domain::EntityKind kind, int64_t other) {
          AppendDealLinked(links, id, {kind, other});
        };
        if (deal.company_id != 0) {
          linked(domain::EntityKind::kCompany, deal.company_id);
        }
        std::set<int64_t> linked_contacts;  // a contact named twice is linked once
        for (int64_t contact : deal.contact_ids) {
          if (linked_contacts.insert(contact).second) {
            linked(domain::EntityKind::kContact, contact);
          }
        }
        HistoryRepository(work).Append(links);
        absl::Status answer = Answer(deals, id, response);
        work.commit();
        return answer;
      });
}

grpc::ServerUnaryReactor* DealApi::UpdateDeal(grpc::CallbackServerContext* context,
                                              const v1::UpdateDealRequest* request,
                                              v1::Deal* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        for (const std::string& path : request->update_mask().paths()) {
          if (path == "pipeline_id" || path == "stage_id") {
            return absl::InvalidArgumentError(
                absl::StrCat(path, " cannot be updated: use DealService/MoveDeal"));
          }
        }
        auto paths = UpdatePaths(
            request->update_mask(),
            {"title", "amount", "responsible_user_id", "expected_close_date", "source_id"},
            v1::Deal::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        const v1::Deal& given = request->deal();
        if (absl::Status text = CheckText("deal.title", given.title()); !text.ok()) {
          return text;
        }
        pqxx::work work(connection);
        DealRepository deals(work);
        if (absl::Status locked = LockDeal(deals, given.id(), given.etag()); !locked.ok()) {
          return locked;
        }
        StoredDeal deal = *deals.Get(given.id());
        const StoredDeal before = deal;
        if (paths->count("title") != 0) {
          if (given.title().find_first_not_of(" \t\r\n") == std::string::npos) {
            return absl::InvalidArgumentError("deal.title cannot be blank");
          }
          deal.title = given.title();
        }
        if (paths->count("amount") != 0) {
          // No currency: the deal's own (the default currency is for a new deal only); 2000 KWD
          // updated to 2500 stays in KWD, never becomes 2500 of the default currency.
          deal.amount = {.amount_minor = given.amount().amount_minor(),
                         .currency = given.amount().currency().empty() ? before.amount.currency
                                                                       : given.amount().currency()};
          if (absl::Status money = domain::ValidateMoney(deal.amount); !money.ok()) {
            return money;
          }
        }
        if (paths->count("responsible_user_id") != 0) {
          deal.responsible_user_id = given.responsible_user_id();
          if (absl::Status user = CheckUser(work, deal.responsible_user_id); !user.ok()) {
            return user;
          }
        }
        if (paths->count("expected_close_date") != 0) {
          if (absl::Status date = CheckDate(given.expected_close_date()); !date.ok()) {
            return date;
          }
          deal.expected_close_date = given.expected_close_date();
        }
        if (paths->count("source_id") != 0) {
          if (absl::Status source = CheckSource(work, given.source_id()); !source.ok()) {
            return source;
          }
          deal.source_id = given.source_id();
        }
        deals.Update(deal);
        auto changed = [&](const std::string& field, const std::string& old_value,
                           const std::string& new_value) {
          if (old_value != new_value) {
            HistoryRecord record =
                HistoryRecord::Of(domain::EntityKind::kDeal, deal.id, "FIELD_CHANGED");
            record.field = field;
            record.old_value = old_value;
            record.new_value = new_value;
            HistoryRepository(work).Append(record);
          }
        };
        changed("title", before.title, deal.title);
        // In major units ("5000.00 EUR"), as a manager reads the timeline.
        changed("amount", domain::FormatMoney(before.amount), domain::FormatMoney(deal.amount));
        changed("responsible_user_id", absl::StrCat(before.responsible_user_id),
                absl::StrCat(deal.responsible_user_id));
        changed("expected_close_date", before.expected_close_date, deal.expected_close_date);
        changed("source_id", before.source_id, deal.source_id);
        absl::Status answer = Answer(deals, deal.id, response);
        work.commit();
        return answer;
      });
}

grpc::ServerUnaryReactor* DealApi::DeleteDeal(grpc::CallbackServerContext* context,
                                              const v1::DeleteDealRequest* request,
                                              google::protobuf::Empty* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        pqxx::work work(connection);
        DealRepository deals(work);
        if (absl::Status locked = LockDeal(deals, request->id(), request->etag()); !locked.ok()) {
          return locked;
        }
        // Its contacts and company read it on their timelines, as a deleted contact is read on
        // its deals': UNLINKED naming the deal, after which GetDeal no longer knows it.
        const StoredDeal deal = *deals.Get(request->id());
        std::vector<HistoryRecord> history{
            HistoryRecord::Of(domain::EntityKind::kDeal, deal.id, "DELETED")};
        auto unlinked = [&](domain::EntityKind kind, int64_t id) {
          history.push_back(HistoryRecord::Of(kind, id, "UNLINKED")
                                .RelatedTo({domain::EntityKind::kDeal, deal.id}));
        };
        for (int64_t contact : deal.contact_ids) {
          unlinked(domain::EntityKind::kContact, contact);
        }
        if (deal.company_id != 0) {
          unlinked(domain::EntityKind::kCompany, deal.company_id);
        }
        deals.Delete(deal.id);
        HistoryRepository(work).Append(history);
        work.commit();
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* DealApi::MoveDeal(grpc::CallbackServerContext* context,
                                            const v1::MoveDealRequest* request,
                                            v1::Deal* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        if (request->stage_id().empty()) {
          return absl::InvalidArgumentError("stage_id is required");
        }
        auto user = ActingUser(context);
        if (!user.ok()) {
          return user.status();
        }
        pqxx::work work(connection);
        if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
          return check;
        }
        DealRepository deals(work);
        if (absl::Status locked = LockDeal(deals, request->deal_id(), request->etag());
            !locked.ok()) {
          return locked;
        }
        const StoredDeal deal = *deals.Get(request->deal_id());
        const int64_t target_id =
            request->pipeline_id() == 0 ? deal.pipeline_id : request->pipeline_id();
        PipelineRepository pipelines(work);
        // Both pipelines FOR SHARE, in id order (no stage edit meanwhile, no deadlock).
        for (int64_t id :
             {std::min(deal.pipeline_id, target_id), std::max(deal.pipeline_id, target_id)}) {
          if (!pipelines.Lock(id, /*shared=*/true)) {
            return domain::NotFound("pipeline", id);
          }
        }
        const StoredPipeline from = *pipelines.Get(deal.pipeline_id);
        std::optional<StoredPipeline> to;
        if (target_id != deal.pipeline_id) {
          to = pipelines.Get(target_id);
        }
        auto change = domain::PlanStageChange(from.pipeline, deal.stage_id,
                                              to ? &to->pipeline : nullptr, request->stage_id());
        if (!change.ok()) {
          return change.status();
        }
        if (!change->no_op) {
          const domain::Stage* stage =
              domain::FindStage(to ? to->pipeline : from.pipeline, change->to_stage_id);
          deals.Move(deal.id, *change, stage->semantics, *user);
        }
        absl::Status answer = Answer(deals, deal.id, response);
        work.commit();
        return answer;
      });
}

grpc::ServerUnaryReactor* DealApi::ListStageHistory(grpc::CallbackServerContext* context,
                                                    const v1::ListStageHistoryRequest* request,
                                                    v1::ListStageHistoryResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=, this](pqxx::connection& connection) {
                   auto page = ParsePage(backend_.page_token_key, *request);
                   if (!page.ok()) {
                     return page.status();
                   }
                   pqxx::read_transaction work(connection);
                   DealRepository deals(work);
                   if (!deals.Get(request->deal_id())) {
                     return DealNotFound(request->deal_id());
                   }
                   FillPage(
                       deals.StageHistory(request->deal_id(), page->after_id, page->limit()), *page,
                       [&](const StageChangeRecord& change) {
                         v1::DealStageChange* out = response->add_changes();
                         out->set_id(change.id);
                         out->set_from_pipeline_id(change.from_pipeline_id);
                         out->set_from_stage_id(change.from_stage_id);
                         out->set_to_pipeline_id(change.to_pipeline_id);
                         out->set_to_stage_id(change.to_stage_id);
                         out->set_user_id(change.user_id);
                         out->set_event_id(change.event_id);
                         *out->mutable_time() = FromMicros(change.micros);
                       },
                       response->mutable_next_page_token());
                   return absl::OkStatus();
                 });
}

namespace {

// A link change: the deal locked, the other side checked, one timeline entry each side.
absl::Status ChangeLink(pqxx::connection& connection, int64_t deal_id, domain::EntityKind kind,
                        int64_t other_id, bool link, v1::Deal* response) {
  const bool contact = kind == domain::EntityKind::kContact;
  // Every request but ClearCompany names the other record: without its id the answer is about
  // the request, never NOT_FOUND for "contact 0" (a record that seems to have gone missing).
  if (link || contact) {
    const char* field = contact ? "contact_id" : "company_id";
    if (other_id == 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
    }
    if (other_id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, " must be positive"));
    }
  }
  pqxx::work work(connection);
  // The contact or company held until the commit (HoldLive), before the deal's row, the order a
  // merge takes them in (its rows, then the deals it relinks): a merge folding it either waits
  // and moves this link, or committed first and the answer names where it went — also for an
  // unlink, whose folded id is no longer on the deal.
  if (other_id > 0) {
    if (absl::Status held = HoldLive(work, kind, other_id); !held.ok()) {
      return held;
    }
  }
  DealRepository deals(work);
  if (absl::Status locked = LockDeal(deals, deal_id, ""); !locked.ok()) {
    return locked;
  }
  const StoredDeal deal = *deals.Get(deal_id);
  bool changed = false;
  int64_t unlinked_company = 0;
  if (contact) {
    changed = link ? deals.LinkContact(deal_id, other_id) : deals.UnlinkContact(deal_id, other_id);
    if (!link && !changed) {
      return absl::NotFoundError(
          absl::StrCat("contact ", other_id, " is not linked to deal ", deal_id));
    }
  } else if (link) {
    changed = deal.company_id != other_id;
    unlinked_company = changed ? deal.company_id : 0;
    if (changed) {
      deals.SetCompany(deal_id, other_id);
    }
  } else {
    changed = deal.company_id != 0;
    unlinked_company = deal.company_id;
    if (changed) {
      deals.SetCompany(deal_id, 0);
    }
  }
  if (changed) {
    if (contact) {
      deals.Touch(deal_id);
    }
    auto entry = [&](const char* what, domain::EntityKind other_kind, int64_t other) {
      HistoryRepository(work).Append({HistoryRecord::Of(domain::EntityKind::kDeal, deal_id, what)
                                          .RelatedTo({other_kind, other}),
                                      HistoryRecord::Of(other_kind, other, what)
                                          .RelatedTo({domain::EntityKind::kDeal, deal_id})});
    };
    if (unlinked_company != 0) {
      entry("UNLINKED", domain::EntityKind::kCompany, unlinked_company);
    }
    if (link) {
      entry("LINKED", kind, other_id);
    } else if (contact) {
      entry("UNLINKED", kind, other_id);
    }
  }
  absl::Status answer = Answer(deals, deal_id, response);
  work.commit();
  return answer;
}

}  // namespace

grpc::ServerUnaryReactor* DealApi::LinkContact(grpc::CallbackServerContext* context,
                                               const v1::LinkDealContactRequest* request,
                                               v1::Deal* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return ChangeLink(connection, request->deal_id(), domain::EntityKind::kContact,
                                     request->contact_id(), true, response);
                 });
}

grpc::ServerUnaryReactor* DealApi::UnlinkContact(grpc::CallbackServerContext* context,
                                                 const v1::UnlinkDealContactRequest* request,
                                                 v1::Deal* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return ChangeLink(connection, request->deal_id(), domain::EntityKind::kContact,
                                     request->contact_id(), false, response);
                 });
}

grpc::ServerUnaryReactor* DealApi::SetCompany(grpc::CallbackServerContext* context,
                                              const v1::SetDealCompanyRequest* request,
                                              v1::Deal* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return ChangeLink(connection, request->deal_id(), domain::EntityKind::kCompany,
                                     request->company_id(), true, response);
                 });
}

grpc::ServerUnaryReactor* DealApi::ClearCompany(grpc::CallbackServerContext* context,
                                                const v1::ClearDealCompanyRequest* request,
                                                v1::Deal* response) {
  return RunCall(context, __func__, backend_, Right::kWriteCrm, response,
                 [=](pqxx::connection& connection) {
                   return ChangeLink(connection, request->deal_id(), domain::EntityKind::kCompany,
                                     0, false, response);
                 });
}

}  // namespace leadflow::crm
