// LeadService.ConvertLead: domain/conversion's plan written in one transaction, all or nothing,
// idempotent by request id (the conversions row records the request id with the result).
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "crm-core/api/call_common.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/store/deal_repository.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;
using domain::Slot;

constexpr size_t kMaxRequestIdLength = 128;

std::optional<domain::Produce> ProduceFromProto(v1::ConversionProduce produce) {
  switch (produce) {
    case v1::CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL:
      return domain::Produce::kContactCompanyDeal;
    case v1::CONVERSION_PRODUCE_CONTACT_COMPANY:
      return domain::Produce::kContactCompany;
    case v1::CONVERSION_PRODUCE_CONTACT_DEAL:
      return domain::Produce::kContactDeal;
    case v1::CONVERSION_PRODUCE_CONTACT:
      return domain::Produce::kContact;
    case v1::CONVERSION_PRODUCE_COMPANY:
      return domain::Produce::kCompany;
    case v1::CONVERSION_PRODUCE_DEAL:
      return domain::Produce::kDeal;
    default:
      return std::nullopt;
  }
}

std::vector<std::string> LockKeys(const std::vector<domain::Identity>& identities) {
  std::vector<std::string> keys;
  for (const domain::Identity& identity : identities) {
    keys.push_back(IdentityLockKey({std::string(domain::ToString(identity.kind)), identity.value}));
  }
  return keys;
}

// A conversion request's parameters, recorded with its request id: "CONTACT_DEAL contact_id=0
// company_id=0 pipeline_id=4".
std::string RequestParameters(domain::Produce produce, const v1::ConvertLeadRequest& request) {
  return absl::StrCat(std::string(domain::ToString(produce)), " contact_id=", request.contact_id(),
                      " company_id=", request.company_id(), " pipeline_id=", request.pipeline_id());
}

// The answer of an earlier conversion with this request id, when this is the same request; a
// request id reused for another one is refused (an idempotency key names one request).
absl::Status Replay(ConversionRepository& conversions, const ConversionRecord& record,
                    int64_t lead_id, const std::string& request_id, const std::string& parameters,
                    domain::Produce produce, v1::ConvertLeadResponse* response) {
  if (record.lead_id != lead_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id ", domain::Quoted(request_id), " was used to convert lead ",
                     record.lead_id, ", not lead ", lead_id, "; use a new request id"));
  }
  // Rows older than the recorded parameters have their produce only.
  const std::string& asked = record.request.empty() ? record.produce : record.request;
  const std::string now =
      record.request.empty() ? std::string(domain::ToString(produce)) : parameters;
  if (asked != now) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request_id ", domain::Quoted(request_id), " was used for another conversion of lead ",
        lead_id, " (", asked, ", not ", now, "); use a new request id"));
  }
  response->set_lead_id(record.lead_id);
  response->set_contact_id(record.contact_id);
  response->set_company_id(record.company_id);
  response->set_deal_id(record.deal_id);
  response->set_contact_created(
      record.contact_id != 0 &&
      conversions.Created(EntityKind::kContact, record.contact_id, lead_id));
  response->set_company_created(
      record.company_id != 0 &&
      conversions.Created(EntityKind::kCompany, record.company_id, lead_id));
  response->set_replayed(true);
  return absl::OkStatus();
}

std::vector<IdentityKey> Keys(const std::vector<domain::Identity>& identities) {
  std::vector<IdentityKey> keys;
  for (const domain::Identity& identity : identities) {
    keys.push_back({std::string(domain::ToString(identity.kind)), identity.value});
  }
  return keys;
}

// One person, one record: a lead converted into an existing contact (company) never copies onto
// it a phone or email another contact (company) holds, which would send that person's traffic to
// this record's deal (docs/domain.md, "Conversion"). FAILED_PRECONDITION naming each holder and
// the ways out, when `held` (IdentitiesHeldByAnother) is not empty.
absl::Status RefuseHeldIdentities(int64_t lead_id, domain::EntityKind kind, int64_t target,
                                  const std::vector<HeldIdentity>& held) {
  if (held.empty()) {
    return absl::OkStatus();
  }
  const bool company = kind == domain::EntityKind::kCompany;
  const char* noun = company ? "company" : "contact";
  const char* plural = company ? "companies" : "contacts";
  const char* merge = company ? "CompanyService/MergeCompanies" : "ContactService/MergeContacts";
  std::map<int64_t, std::vector<std::string>> by_holder;
  for (const HeldIdentity& identity : held) {
    by_holder[identity.holder_id].push_back(identity.key.value);
  }
  std::vector<std::string> parts;
  std::vector<std::string> ids;
  for (const auto& [holder, values] : by_holder) {
    parts.push_back(absl::StrCat(absl::StrJoin(values, ", "), " with ", noun, " ", holder));
    ids.push_back(absl::StrCat(holder));
  }
  const int64_t first = by_holder.begin()->first;
  const std::string ways =
      by_holder.size() == 1 ? absl::StrCat("convert it into ", noun, " ", first, " (", noun, "_id ",
                                           first, "), or merge ", plural, " ", first, " and ",
                                           target, " first (", merge, ")")
                            : absl::StrCat("merge those of ", plural, " ", absl::StrJoin(ids, ", "),
                                           " and ", target, " that are this person first (", merge,
                                           "), then convert it into the one kept");
  return absl::FailedPreconditionError(absl::StrCat("lead ", lead_id, " shares ",
                                                    absl::StrJoin(parts, "; "), ": ", ways,
                                                    "; nothing was written"));
}

// FAILED_PRECONDITION when existing contact (company) `target` would hold more than
// `max_identities` phones, emails and messenger ids with the lead's `keys` it lacks; a record over
// the cap already (identities set by hand) still takes a lead that adds nothing new.
absl::Status RefuseOverCap(pqxx::transaction_base& work, int64_t lead_id, EntityKind kind,
                           int64_t target, const std::vector<IdentityKey>& keys,
                           size_t max_identities) {
  // The record's row locked as the writer of added identities locks it (FOR NO KEY UPDATE) before
  // counting: under HoldLive's FOR KEY SHARE two conversions into it at once both counted the
  // same identities and both passed. The count is a statement of its own, after the lock, so it
  // sees what a conversion committed while this one waited.
  const bool company = kind == EntityKind::kCompany;
  work.exec_prepared(company ? "lock_company_identities" : "lock_contact_identities", target);
  const std::string type(domain::ToString(kind));
  std::vector<IdentityKey> now = MergeRepository(work).Identities(type, {target});
  const size_t held = now.size();
  for (const IdentityKey& key : keys) {
    if (std::find(now.begin(), now.end(), key) == now.end()) {
      now.push_back(key);
    }
  }
  if (now.size() == held || now.size() <= max_identities) {
    return absl::OkStatus();
  }
  const char* noun = company ? "company" : "contact";
  return absl::FailedPreconditionError(absl::StrCat(
      noun, " ", target, " holds ", held, " phones, emails and messenger ids and would hold ",
      now.size(), " with lead ", lead_id, "'s, over the cap of ", max_identities,
      " (CRM_LEAD_MAX_INBOUND_IDENTITIES): remove some from the ", noun, " first (",
      company ? "CompanyService/UpdateCompany" : "ContactService/UpdateContact",
      "), or convert without ", noun, "_id; nothing was written"));
}

}  // namespace

grpc::ServerUnaryReactor* LeadApi::ConvertLead(grpc::CallbackServerContext* context,
                                               const v1::ConvertLeadRequest* request,
                                               v1::ConvertLeadResponse* response) {
  metrics::Counter* dropped = backend_.fold_recordings_dropped;  // copied: no `this` below
  const size_t max_identities = backend_.max_record_identities;
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        const int64_t lead_id = request->lead_id();
        const std::string& request_id = request->request_id();
        if (lead_id <= 0) {
          return absl::InvalidArgumentError("lead_id is required");
        }
        std::optional<domain::Produce> produce = ProduceFromProto(request->produce());
        if (!produce) {
          return absl::InvalidArgumentError(
              "produce is required: CONTACT_COMPANY_DEAL, CONTACT_COMPANY, CONTACT_DEAL, "
              "CONTACT, COMPANY or DEAL");
        }
        // Characters, as the proto says and the column's CHECK (length()) counts: a multi-byte
        // character is one.
        const auto characters = std::count_if(request_id.begin(), request_id.end(), [](char c) {
          return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        });
        if (static_cast<size_t>(characters) > kMaxRequestIdLength) {
          return absl::InvalidArgumentError(
              absl::StrCat("request_id: at most ", kMaxRequestIdLength, " characters"));
        }
        if (request->contact_id() < 0 || request->company_id() < 0 || request->pipeline_id() < 0) {
          return absl::InvalidArgumentError("contact_id, company_id and pipeline_id are ids (≥ 0)");
        }
        pqxx::work work(connection);
        ConversionRepository conversions(work);
        if (!request_id.empty()) {
          conversions.LockRequest(request_id);
          if (auto earlier = conversions.FindByRequest(request_id)) {
            return Replay(conversions, *earlier, lead_id, request_id,
                          RequestParameters(*produce, *request), *produce, response);
          }
        }
        // The identity locks the inbound consumer takes, before the lead's row lock (the order
        // the consumer takes them in); identities added in between are locked after.
        EventRepository events(work);
        const std::vector<domain::Identity> identities = conversions.LeadIdentities(lead_id);
        events.LockIdentities(LockKeys(identities));
        int64_t merged_into = 0;
        std::optional<domain::LeadToConvert> lead = conversions.LockLead(lead_id, &merged_into);
        if (!lead) {
          return domain::NotFound(EntityKind::kLead, lead_id);
        }
        if (merged_into != 0) {
          return NotLive(work, EntityKind::kLead, lead_id);  // names the end of its merge chain
        }
        if (lead->identities != identities) {
          events.LockIdentities(LockKeys(lead->identities));
        }

        DealRepository deals(work);
        // The existing contact and company held until the commit: a merge folding one of them
        // meanwhile either waits for this conversion (and moves what it wrote) or has committed,
        // and the answer names the record it was merged into.
        for (auto [kind, id] : {std::pair{EntityKind::kContact, request->contact_id()},
                                {EntityKind::kCompany, request->company_id()}}) {
          if (id == 0) continue;
          if (absl::Status held = HoldLive(work, kind, id); !held.ok()) {
            return held;
          }
        }
        const StoredSettings settings = SettingsRepository(work).Get();
        domain::ConversionOptions options{
            .produce = *produce,
            .pipeline_requested = request->pipeline_id() != 0,
            .last_name_placeholder = settings.last_name_placeholder,
            .success_status_id = StatusRepository(work, StatusKind::kLeadStatus).SuccessStatusId()};
        if (request->contact_id() != 0) options.contact_id = request->contact_id();
        if (request->company_id() != 0) options.company_id = request->company_id();
        const bool makes_deal = *produce == domain::Produce::kContactCompanyDeal ||
                                *produce == domain::Produce::kContactDeal ||
                                *produce == domain::Produce::kDeal;
        PipelineRepository pipelines(work);
        std::optional<StoredPipeline> pipeline;
        if (makes_deal) {
          options.pipeline_id =
              request->pipeline_id() != 0 ? request->pipeline_id() : settings.inbound_pipeline_id;
          if (!pipelines.Lock(options.pipeline_id, /*shared=*/true)) {
            return domain::NotFound("pipeline", options.pipeline_id);
          }
          pipeline = pipelines.Get(options.pipeline_id);
          options.first_stage_id = domain::FirstStage(pipeline->pipeline).id;
        }
        auto plan = domain::PlanConversion(*lead, options);
        if (!plan.ok()) {
          return plan.status();
        }
        // What the conversion creates goes to the lead's responsible while that user is active;
        // a deactivated one's leads go to whoever converts them (the acting user, none without
        // one), as nothing else this API writes is given to a user who cannot work it.
        plan->responsible_user_id = WorkingResponsible(work, plan->responsible_user_id);

        // One person, one contact: a new contact holding a phone or email an existing contact
        // holds would be a second record of that person, whose later traffic then finds the
        // older one (docs/domain.md, "Conversion"). The caller names the contact instead.
        if (plan->create_contact) {
          const std::vector<int64_t> holders =
              ContactRepository(work).FindByIdentities(Keys(plan->contact_identities));
          if (!holders.empty()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "lead ", lead_id, " shares a phone or email with contact ", holders.front(),
                ": convert it into that contact (contact_id ", holders.front(),
                ") instead of creating a second one for the same person"));
          }
        }
        // The same for a new company: another company's phone copied onto it made two records
        // of one company (docs/domain.md, "One person, one record"). An existing contact or
        // company the caller names is checked below, with the holders and the ways out named.
        if (plan->create_company) {
          if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
                  work, EntityKind::kCompany, 0, Keys(plan->company_identities),
                  absl::StrCat("convert lead ", lead_id,
                               " into that record (company_id) if it is this company, or merge "
                               "the records first"));
              !apart.ok()) {
            return apart;
          }
        }

        // The same rule for an existing contact or company the caller names: it never takes a
        // phone or email another record of its kind holds.
        if (plan->use_contact_id) {
          if (absl::Status held = RefuseHeldIdentities(
                  lead_id, EntityKind::kContact, *plan->use_contact_id,
                  IdentitiesHeldByAnother(work, EntityKind::kContact, *plan->use_contact_id,
                                          Keys(plan->contact_identities)));
              !held.ok()) {
            return held;
          }
        }
        if (plan->use_company_id) {
          if (absl::Status held = RefuseHeldIdentities(
                  lead_id, EntityKind::kCompany, *plan->use_company_id,
                  IdentitiesHeldByAnother(work, EntityKind::kCompany, *plan->use_company_id,
                                          Keys(plan->company_identities)));
              !held.ok()) {
            return held;
          }
        }

        // The identity cap (docs/domain.md, "The identity cap"), as the upserts, merges and
        // inbound traffic keep it: one lead after another converted into the same record grew it
        // without bound.
        for (const auto& [kind, target, identities] :
             {std::tuple{EntityKind::kContact, plan->use_contact_id, &plan->contact_identities},
              {EntityKind::kCompany, plan->use_company_id, &plan->company_identities}}) {
          if (!target) continue;
          if (absl::Status capped =
                  RefuseOverCap(work, lead_id, kind, *target, Keys(*identities), max_identities);
              !capped.ok()) {
            return capped;
          }
        }

        // Write the plan.
        int64_t contact_id = plan->use_contact_id.value_or(0);
        int64_t company_id = plan->use_company_id.value_or(0);
        int64_t deal_id = 0;
        if (plan->create_contact) {
          contact_id = conversions.InsertContact(*plan->create_contact, plan->responsible_user_id,
                                                 plan->source_id);
        }
        if (plan->create_company) {
          company_id = conversions.InsertCompany(*plan->create_company, plan->responsible_user_id,
                                                 plan->source_id);
        }
        // A new record takes the lead's identities as it is born; an existing one through the
        // store's one writer of added identities (a new etag, FIELD_CHANGED phones/emails).
        if (plan->create_contact) {
          conversions.AddContactIdentities(contact_id, plan->contact_identities);
        } else if (contact_id != 0) {
          AddIdentitiesToExisting(work, EntityKind::kContact, contact_id,
                                  Keys(plan->contact_identities));
        }
        if (plan->create_company) {
          conversions.AddCompanyIdentities(company_id, plan->company_identities);
        } else if (company_id != 0) {
          AddIdentitiesToExisting(work, EntityKind::kCompany, company_id,
                                  Keys(plan->company_identities));
        }
        if (plan->link_contact_company) {
          conversions.LinkContactCompany(contact_id, company_id);
        }
        if (plan->create_deal) {
          const domain::Stage& stage =
              *domain::FindStage(pipeline->pipeline, plan->create_deal->stage_id);
          StoredDeal deal{.title = plan->create_deal->title,
                          .pipeline_id = plan->create_deal->pipeline_id,
                          .stage_id = stage.id,
                          .semantics = stage.semantics,
                          .amount = {.amount_minor = 0, .currency = settings.default_currency},
                          .company_id = plan->link_deal_company ? company_id : 0,
                          .responsible_user_id = plan->responsible_user_id,
                          .source_id = plan->source_id,
                          .lead_id = lead_id};
          if (plan->link_deal_contact) {
            deal.contact_ids.push_back(contact_id);
          }
          // Insert writes the deal's one CREATED entry: its first stage, related to the lead it
          // came from, by the acting user (ActingUserScope).
          deal_id = deals.Insert(deal, 0);
        }
        conversions.MarkConverted(lead_id, plan->lead_status_id, contact_id, company_id, deal_id);
        // The lead's open call-back, folded into the one its new owner may have (at most 20
        // recordings kept): what the fold left out is counted once committed.
        const std::vector<OpenCallBack> call_backs =
            plan->activities_to == Slot::kLead
                ? std::vector<OpenCallBack>{}
                : CallRepository(work).OpenCallBacks("LEAD", {lead_id});
        int64_t recordings_dropped = 0;
        auto move_to = [&](EntityKind kind, int64_t owner_id) {
          conversions.MoveActivities(lead_id, kind, owner_id);
          recordings_dropped = RecordingsDroppedByFold(work, std::string(domain::ToString(kind)),
                                                       owner_id, call_backs);
        };
        switch (plan->activities_to) {
          case Slot::kDeal:
            move_to(EntityKind::kDeal, deal_id);
            break;
          case Slot::kContact:
            move_to(EntityKind::kContact, contact_id);
            break;
          case Slot::kCompany:
            move_to(EntityKind::kCompany, company_id);
            break;
          case Slot::kLead:
            break;
        }
        auto ref = [&](Slot slot) -> std::pair<EntityKind, int64_t> {
          switch (slot) {
            case Slot::kContact:
              return {EntityKind::kContact, contact_id};
            case Slot::kCompany:
              return {EntityKind::kCompany, company_id};
            case Slot::kDeal:
              return {EntityKind::kDeal, deal_id};
            case Slot::kLead:
              break;
          }
          return {EntityKind::kLead, lead_id};
        };
        std::vector<HistoryRecord> history;
        for (const domain::PlannedHistory& entry : plan->history) {
          auto [kind, id] = ref(entry.subject);
          HistoryRecord& record = history.emplace_back(HistoryRecord::Of(kind, id, entry.kind));
          if (entry.related) {
            auto [related_kind, related_id] = ref(*entry.related);
            record.RelatedTo({related_kind, related_id});
          }
        }
        HistoryRecord& status =
            history.emplace_back(HistoryRecord::Of(EntityKind::kLead, lead_id, "STATUS_CHANGED"));
        status.field = "status";
        status.old_value = lead->status_id;
        status.new_value = plan->lead_status_id;
        HistoryRepository(work).Append(history);
        domain::Produced produced;
        if (contact_id != 0) produced.contact_id = contact_id;
        if (company_id != 0) produced.company_id = company_id;
        if (deal_id != 0) produced.deal_id = deal_id;
        conversions.Record(request_id, lead_id, *produce, produced, ActingUserScope::Current(),
                           request_id.empty() ? "" : RequestParameters(*produce, *request));
        work.commit();
        if (dropped != nullptr && recordings_dropped > 0) {
          dropped->Increment(static_cast<double>(recordings_dropped));
        }
        response->set_lead_id(lead_id);
        response->set_contact_id(contact_id);
        response->set_company_id(company_id);
        response->set_deal_id(deal_id);
        response->set_contact_created(plan->create_contact.has_value());
        response->set_company_created(plan->create_company.has_value());
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
