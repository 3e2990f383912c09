// LeadService: leads over gRPC.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/filters.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/domain/conversion/conversion.h"
#include "crm-core/domain/matching/matching.h"
#include "crm-core/store/deal_repository.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"
#include "google/protobuf/unknown_field_set.h"
#include "identity/identity.h"

namespace leadflow::crm {
namespace {

// The free-text fields a caller may set on a lead; its names are bounded as a contact's and a
// company's are, which a conversion makes from them.
absl::Status CheckLeadText(const v1::Lead& lead) {
  for (const auto& [field, value] :
       {std::pair{"title", lead.title()}, {"comments", lead.comments()}}) {
    if (absl::Status status = CheckText(field, value); !status.ok()) {
      return status;
    }
  }
  for (const auto& [field, value] : {std::pair{"first_name", lead.first_name()},
                                     {"last_name", lead.last_name()},
                                     {"company_name", lead.company_name()},
                                     {"city", lead.city()}}) {
    if (absl::Status status = CheckShortText(field, value, domain::kMaxNameBytes); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

void ToProto(const Lead& lead, v1::Lead* out) {
  out->set_id(lead.id);
  out->set_title(lead.title);
  out->set_status_id(lead.status);
  out->set_source_id(lead.source);
  out->set_first_name(lead.first_name);
  out->set_last_name(lead.last_name);
  out->set_company_name(lead.company_name);
  out->set_city(lead.city);
  out->set_comments(lead.comments);
  out->set_responsible_user_id(lead.responsible_user_id);
  out->set_repeat_count(lead.repeat_count);
  out->set_returning(lead.returning);
  out->set_previous_lead_id(lead.previous_lead_id);
  out->set_contact_id(lead.contact_id);
  out->set_company_id(lead.company_id);
  out->set_converted_contact_id(lead.converted_contact_id);
  out->set_converted_company_id(lead.converted_company_id);
  out->set_converted_deal_id(lead.converted_deal_id);
  for (const auto& [key, value] : lead.source_details) {
    (*out->mutable_source_details())[key] = value;
    // The web-form fields, as views of the details (docs/architecture.md, "Lead sources").
    if (key == "reference") {
      out->set_source_reference(value);
    } else if (key == "page_url") {
      out->set_page_url(value);
    } else if (key == "referrer") {
      out->set_referrer(value);
    } else if (absl::StartsWith(key, "utm_")) {
      (*out->mutable_utm())[key.substr(4)] = value;
    } else if (absl::StartsWith(key, "field:")) {
      (*out->mutable_custom_fields())[key.substr(6)] = value;
    }
  }
  *out->mutable_create_time() = FromMicros(lead.create_micros);
  *out->mutable_update_time() = FromMicros(lead.update_micros);
  out->set_etag(Etag(lead.version));
  for (const std::string& phone : lead.phones) {
    out->add_phones(phone);
  }
  for (const std::string& email : lead.emails) {
    out->add_emails(email);
  }
}

absl::Status LoadLead(pqxx::transaction_base& work, int64_t id, v1::Lead* out) {
  std::optional<Lead> lead = LeadRepository(work).Get(id);
  if (!lead) {
    return domain::NotFound(domain::EntityKind::kLead, id);
  }
  if (auto owner = MergeRepository(work).Find("LEAD", id); owner && owner->merged_into != 0) {
    return domain::MergedAway(domain::EntityKind::kLead, id, owner->merged_into);
  }
  ToProto(*lead, out);
  return absl::OkStatus();
}

// Fields 3 and 4 of Lead and ListLeadsRequest were the status and source enums (lead.proto): a
// client built before status_id and source_id still sends them. Refused by name rather than
// dropped as unknown fields, which would list every lead for a filter or file a lead as NEW.
absl::Status RefuseRetiredFields(const google::protobuf::Message& message) {
  const google::protobuf::UnknownFieldSet& unknown =
      message.GetReflection()->GetUnknownFields(message);
  for (int i = 0; i < unknown.field_count(); ++i) {
    if (const int number = unknown.field(i).number(); number == 3 || number == 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          message.GetDescriptor()->name(), " field ", number, " (",
          number == 3 ? "status" : "source",
          ", an enum) is retired: send status_id (a lead status id) and source_id instead"));
    }
  }
  return absl::OkStatus();
}

// A status or source id named in a request must be one of the configured list: an unknown one
// is refused by name, never replaced by a default.
absl::Status CheckKnown(pqxx::transaction_base& work, StatusKind kind, const std::string& id) {
  if (id.empty() || StatusRepository(work, kind).Exists(id)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown lead ", kind == StatusKind::kLeadStatus ? "status" : "source", " ",
                   domain::Quoted(id), " (StatusService/ListStatuses lists them)"));
}

// A status a request sets by hand: known, and not the conversion (SUCCESS) status, which only
// ConvertLead sets together with what the conversion produces.
absl::Status CheckManualStatus(pqxx::transaction_base& work, const std::string& id) {
  std::optional<StatusEntry> status = StatusRepository(work, StatusKind::kLeadStatus).Get(id);
  if (!status) {
    return CheckKnown(work, StatusKind::kLeadStatus, id);
  }
  return crm::CheckManualStatus(*status);
}

// The queue leads created over the API rotate over ("channel:API", or the one the settings name
// for API) and a position in it. Like the consumer's (docs/architecture.md, "Responsible user"),
// the position is taken in a short transaction of its own, so the queue's row is locked for that
// one statement and never for a whole call; a position taken by a call that then fails or finds
// an existing lead is skipped, which only shifts the rotation.
std::pair<std::string, int64_t> TakeApiQueueTurn(pqxx::connection& connection) {
  std::string queue = domain::ChannelQueue(domain::kApiChannel);
  {
    pqxx::read_transaction read(connection);
    const StoredSettings settings = SettingsRepository(read).Get();
    if (auto named = settings.channel_queues.find(domain::kApiChannel);
        named != settings.channel_queues.end()) {
      queue = named->second;
    }
  }
  const int64_t position = AdvanceQueue(connection, queue, 1);
  return {queue, position};
}

// What CreateLead's upsert did before any lead is inserted (docs/domain.md, "Upsert by
// identity").
struct UpsertDone {
  v1::UpsertOutcome outcome = v1::UPSERT_OUTCOME_CREATED;
  int64_t lead_id = 0;           // EXISTING: the open lead that took the request
  domain::EntityRef target;      // ACTIVITY: the deal, contact or company that took it
  int64_t activity_id = 0;       // ACTIVITY
  int64_t previous_lead_id = 0;  // RETURNING_LEAD: its links
  int64_t link_contact_id = 0;
  int64_t link_company_id = 0;
  int64_t responsible_user_id = 0;  // RETURNING_LEAD: whoever had the client before (0: none)
};

v1::OwnerType KindOwnerType(domain::EntityKind kind) {
  return OwnerTypeOf(std::string(domain::ToString(kind)));
}

// The request as an activity on the record that takes it: its title as the subject, its words
// and the names it gave as the description, so that nothing the caller sent is lost.
Activity RequestActivity(const std::string& title, const v1::Lead& lead, domain::EntityRef owner,
                         int64_t responsible) {
  std::string description = lead.comments();
  for (const auto& [label, value] :
       {std::pair{"Name", absl::StrCat(lead.first_name(), " ", lead.last_name())},
        {"Company", lead.company_name()},
        {"City", lead.city()}}) {
    const std::string trimmed(domain::TrimAscii(value));
    if (!trimmed.empty()) {
      absl::StrAppend(&description, description.empty() ? "" : "\n", label, ": ", trimmed);
    }
  }
  return Activity{.type = "TASK",
                  .owner_type = std::string(domain::ToString(owner.kind)),
                  .owner_id = owner.id,
                  .subject = absl::StrCat("Repeated request: ", title),
                  .description = description,
                  .responsible_user_id = responsible};
}

// CreateLead with upsert_by_identity, classic mode, under the identity locks of `keys`: finds
// the person as the inbound consumer does (domain/matching's Decide over the leads, contacts
// and companies holding the identities, and the open leads linked to them) and applies what it
// decides, except making the new lead, which the caller does (CREATED, RETURNING_LEAD).
absl::StatusOr<bool> UpsertLead(pqxx::work& work, const std::vector<IdentityKey>& keys,
                                int64_t user, const std::string& title, const v1::Lead& lead,
                                int64_t requested_responsible, const InboundSettings& settings,
                                size_t max_identities, UpsertDone& done) {
  InboundRepository inbound(work);
  std::vector<KnownLead> known_leads;
  std::vector<KnownParty> contacts;
  std::vector<KnownParty> companies;
  std::vector<KnownLead> linked;
  // One round of the consumer's lock closure: the matched records' other identities are locked
  // too before the decision, so a batch holding one of them waits for this call or is seen.
  for (int round = 0; round < 2; ++round) {
    known_leads.clear();
    for (KnownLead& found : LeadRepository(work).FindByIdentities(keys)) {
      if (auto owner = MergeRepository(work).Find("LEAD", found.id);
          owner && owner->merged_into == 0) {
        known_leads.push_back(std::move(found));
      }
    }
    contacts = inbound.FindContacts(keys);
    companies = inbound.FindCompanies(keys);
    std::vector<int64_t> contact_ids;
    std::vector<int64_t> lead_ids;
    for (const KnownParty& contact : contacts) contact_ids.push_back(contact.id);
    for (const KnownLead& found : known_leads) lead_ids.push_back(found.id);
    linked = inbound.FindOpenLinkedLeads(contact_ids, lead_ids);
    if (round == 0) {
      std::vector<IdentityKey> closure;
      for (const auto* found : {&known_leads, &linked}) {
        for (const KnownLead& record : *found) {
          closure.insert(closure.end(), record.identities.begin(), record.identities.end());
        }
      }
      for (const auto* parties : {&contacts, &companies}) {
        for (const KnownParty& party : *parties) {
          closure.insert(closure.end(), party.identities.begin(), party.identities.end());
        }
      }
      LockIdentityKeys(work, closure);
    }
  }
  // One person, one record: the request's identities held by two contacts (or two companies)
  // are two people or a duplicate to merge first; deciding for one of them put the request on
  // the other's deal and copied each one's phone onto the other (docs/domain.md, "Upsert by
  // identity").
  for (const auto& [parties, noun] :
       {std::pair{&contacts, "contact"}, std::pair{&companies, "company"}}) {
    if (parties->size() < 2) continue;
    std::vector<std::string> parts;
    for (const KnownParty& party : *parties) {
      std::vector<std::string> values;
      for (const IdentityKey& key : keys) {
        if (party.identities.count(key) != 0) values.push_back(key.value);
      }
      parts.push_back(absl::StrCat(noun, " ", party.id, " holds ", absl::StrJoin(values, ", ")));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "the request's phones and emails belong to ", parties->size(), " ", noun, " records (",
        absl::StrJoin(parts, "; "),
        "): nothing was written; send the identities of one of them, or merge them first"));
  }
  const std::set<int64_t> active = [&] {
    const std::vector<int64_t> ids = UserRepository(work).ActiveIds();
    return std::set<int64_t>(ids.begin(), ids.end());
  }();
  auto active_or_none = [&](int64_t id) { return active.count(id) != 0 ? id : 0; };
  domain::MatchInput input;
  input.mode = settings.mode;
  input.repeat_rule = settings.repeat_rule;
  input.channel = domain::kApiChannel;
  if (auto queue = settings.channel_queues.find(domain::kApiChannel);
      queue != settings.channel_queues.end()) {
    input.channel_queue = queue->second;
  }
  input.inbound_pipeline_id = settings.inbound_pipeline_id;
  input.inbound_first_stage_id = settings.inbound_first_stage_id;
  std::map<int64_t, const KnownLead*> leads_by_id;
  for (const KnownLead& found : known_leads) leads_by_id[found.id] = &found;
  // Open leads reached through a contact or an earlier open or closed, not converted, lead.
  for (const KnownLead& found : linked) {
    const bool through_contact =
        found.contact_id != 0 &&
        std::any_of(contacts.begin(), contacts.end(),
                    [&](const KnownParty& contact) { return contact.id == found.contact_id; });
    const auto previous = leads_by_id.find(found.previous_lead_id);
    const bool through_lead =
        previous != leads_by_id.end() && previous->second->semantics != domain::Semantics::kSuccess;
    if ((through_contact || through_lead) && leads_by_id.count(found.id) == 0) {
      leads_by_id[found.id] = &found;
    }
  }
  for (const auto& [id, found] : leads_by_id) {
    input.leads.push_back({id, found->semantics, active_or_none(found->responsible_user_id)});
  }
  for (auto [parties, out] :
       {std::pair{&contacts, &input.contacts}, {&companies, &input.companies}}) {
    for (const KnownParty& party : *parties) {
      domain::PartyCandidate candidate{
          .id = party.id, .responsible_user_id = active_or_none(party.responsible_user_id)};
      for (const auto& [deal, responsible] : party.open_deals) {
        candidate.open_deals.push_back({deal, active_or_none(responsible)});
      }
      out->push_back(std::move(candidate));
    }
  }
  const domain::MatchDecision decision = domain::Decide(input);
  const int64_t responsible =
      requested_responsible != 0 ? requested_responsible : decision.responsible.user_id;
  // The request's identities go where inbound traffic's would: the open lead, or the contact
  // (else company) that matched, never a deal.
  auto add_to_party = [&](domain::EntityKind kind, int64_t id) -> absl::Status {
    return kind == domain::EntityKind::kContact
               ? AddIdentities<Contact>(work, id, keys, user, max_identities)
               : AddIdentities<Company>(work, id, keys, user, max_identities);
  };
  switch (decision.action) {
    case domain::MatchAction::kActivityOnLead: {
      const int64_t id = decision.target->id;
      const KnownLead& found = *leads_by_id.at(id);
      std::vector<IdentityKey> held(found.identities.begin(), found.identities.end());
      std::vector<IdentityKey> added;
      for (const IdentityKey& key : keys) {
        if (std::find(held.begin(), held.end(), key) == held.end() &&
            std::find(added.begin(), added.end(), key) == added.end()) {
          added.push_back(key);
        }
      }
      // Another open lead's phone or email is that lead's person: the request spans two open
      // leads, as an upsert over two contacts does.
      if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
              work, domain::EntityKind::kLead, id, added,
              "send the identities of one of them, or merge the leads first (MergeLeads)");
          !apart.ok()) {
        return apart;
      }
      if (held.size() + added.size() > max_identities) {
        return absl::FailedPreconditionError(absl::StrCat(
            "lead ", id, " holds these identities already and would hold ",
            held.size() + added.size(), " phones and emails with the request's, over the cap of ",
            max_identities, "; leave some out of the request"));
      }
      LeadRepository leads(work);
      std::vector<HistoryRecord> history;
      std::vector<IdentityKey> after = held;
      after.insert(after.end(), added.begin(), added.end());
      for (const auto& [field, kind] : {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}}) {
        RecordChange(history, "LEAD", id, user, field, JoinIdentities(held, kind),
                     JoinIdentities(after, kind));
      }
      for (const IdentityKey& key : added) leads.AddIdentity(id, key);
      // One more request from the person on their open lead, as a repeated form makes; the
      // repeat count's update gives the lead a new etag.
      leads.AddRepeats({{id, 1}});
      ActivityRepository(work).Insert(RequestActivity(title, lead, {domain::EntityKind::kLead, id},
                                                      active_or_none(found.responsible_user_id)));
      HistoryRepository(work).Append(history);
      done.outcome = v1::UPSERT_OUTCOME_EXISTING;
      done.lead_id = id;
      return true;
    }
    case domain::MatchAction::kActivityOnDeal: {
      const int64_t deal = decision.target->id;
      // The contact (else company) holding the deal takes the identities.
      bool added = false;
      for (auto [parties, kind] : {std::pair{&contacts, domain::EntityKind::kContact},
                                   {&companies, domain::EntityKind::kCompany}}) {
        for (const KnownParty& party : *parties) {
          if (added) break;
          if (std::any_of(party.open_deals.begin(), party.open_deals.end(),
                          [&](const auto& open) { return open.first == deal; })) {
            if (absl::Status status = add_to_party(kind, party.id); !status.ok()) return status;
            added = true;
          }
        }
      }
      done.outcome = v1::UPSERT_OUTCOME_ACTIVITY;
      done.target = {domain::EntityKind::kDeal, deal};
      done.activity_id = ActivityRepository(work).Insert(
          RequestActivity(title, lead, done.target, decision.responsible.user_id));
      TouchDealActivity(work, deal);
      return true;
    }
    case domain::MatchAction::kActivityOnParty: {
      done.outcome = v1::UPSERT_OUTCOME_ACTIVITY;
      done.target = *decision.target;
      if (absl::Status status = add_to_party(done.target.kind, done.target.id); !status.ok()) {
        return status;
      }
      done.activity_id = ActivityRepository(work).Insert(
          RequestActivity(title, lead, done.target, decision.responsible.user_id));
      return true;
    }
    case domain::MatchAction::kReturningLead:
      // A returning lead holds only the request's identities (docs/domain.md, rule 5).
      done.outcome = v1::UPSERT_OUTCOME_RETURNING_LEAD;
      done.previous_lead_id = decision.previous_lead_id.value_or(0);
      done.link_contact_id = decision.link_contact_id.value_or(0);
      done.link_company_id = decision.link_company_id.value_or(0);
      done.responsible_user_id = responsible;
      return true;
    case domain::MatchAction::kNewLead:
      done.outcome = v1::UPSERT_OUTCOME_CREATED;
      return true;
    case domain::MatchAction::kDealForExisting:
    case domain::MatchAction::kNewContactAndDeal:
      break;
  }
  return absl::InternalError("a simple-mode decision for CreateLead in classic mode");
}

// A lead's identities as the store's keys.
std::vector<IdentityKey> LeadKeys(const std::vector<domain::Identity>& identities) {
  std::vector<IdentityKey> keys;
  for (const domain::Identity& identity : identities) {
    keys.push_back({std::string(domain::ToString(identity.kind)), identity.value});
  }
  return keys;
}

absl::Status CheckUserActive(pqxx::transaction_base& work, int64_t user_id) {
  return CheckActiveUser(work, user_id, "responsible_user_id");
}

}  // namespace

grpc::ServerUnaryReactor* LeadApi::GetLead(grpc::CallbackServerContext* context,
                                           const v1::GetLeadRequest* request, v1::Lead* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   return LoadLead(work, request->id(), response);
                 });
}

grpc::ServerUnaryReactor* LeadApi::ListLeads(grpc::CallbackServerContext* context,
                                             const v1::ListLeadsRequest* request,
                                             v1::ListLeadsResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        if (absl::Status retired = RefuseRetiredFields(*request); !retired.ok()) {
          return retired;
        }
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        if (absl::Status range = CheckCreatedRange(*request); !range.ok()) {
          return range;
        }
        pqxx::read_transaction work(connection);
        for (auto [kind, id] : {std::pair{StatusKind::kLeadStatus, &request->status_id()},
                                {StatusKind::kSource, &request->source_id()}}) {
          if (absl::Status known = CheckKnown(work, kind, *id); !known.ok()) {
            return known;
          }
        }
        if (absl::Status user =
                CheckFilterUser(work, "responsible_user_id", request->responsible_user_id());
            !user.ok()) {
          return user;
        }
        LeadRepository::Filter filter{
            .status = request->status_id(),
            .source = request->source_id(),
            .responsible_user_id = request->responsible_user_id(),
            .created_after_micros =
                request->has_created_after() ? ToMicros(request->created_after()) : 0,
            .created_before_micros =
                request->has_created_before() ? ToMicros(request->created_before()) : 0};
        FillPage(
            LeadRepository(work).List(filter, page->after_id, page->limit()), *page,
            [&](const Lead& lead) { ToProto(lead, response->add_leads()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* LeadApi::CreateLead(grpc::CallbackServerContext* context,
                                              const v1::CreateLeadRequest* request,
                                              v1::Lead* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response,
      [=, this](pqxx::connection& connection) {
        const v1::Lead& lead = request->lead();
        if (absl::Status retired = RefuseRetiredFields(lead); !retired.ok()) {
          return retired;
        }
        auto user = ActingUser(context);
        if (!user.ok()) {
          return user.status();
        }
        if (absl::Status text = CheckLeadText(lead); !text.ok()) {
          return text;
        }
        // Blank parts count as absent: "   " is no title and no name, and an empty last name
        // leaves no trailing space.
        const std::string first(domain::TrimAscii(lead.first_name()));
        const std::string last(domain::TrimAscii(lead.last_name()));
        const std::string name =
            absl::StrCat(first, first.empty() || last.empty() ? "" : " ", last);
        const std::string given_title(domain::TrimAscii(lead.title()));
        std::string title = !given_title.empty() ? given_title
                            : !name.empty()      ? absl::StrCat("Visit – ", name)
                                                 : "";
        if (title.empty()) {
          return absl::InvalidArgumentError("a walk-in lead needs a title or a name");
        }
        // Walk-in identities are matched against later inbound traffic: normalise them the same
        // way. As many of each as a contact or company takes.
        for (const auto& [field, size] :
             {std::pair{"phones", lead.phones_size()}, {"emails", lead.emails_size()}}) {
          if (size > domain::kMaxIdentitiesPerKind) {
            return absl::InvalidArgumentError(absl::StrCat(
                field, ": at most ", domain::kMaxIdentitiesPerKind, " values, got ", size));
          }
        }
        std::vector<std::string> phones;
        std::vector<std::string> emails;
        for (int i = 0; i < lead.phones_size(); ++i) {
          auto phone = identity::NormalizePhone(lead.phones(i), default_region_);
          if (!phone.ok()) {
            return IdentityValueError("phones", i, lead.phones(i), phone.status());
          }
          phones.push_back(*phone);
        }
        for (int i = 0; i < lead.emails_size(); ++i) {
          auto email = NormalizeEmailAddress(lead.emails(i));
          if (!email.ok()) {
            return IdentityValueError("emails", i, lead.emails(i), email.status());
          }
          emails.push_back(*email);
        }
        // The API channel's queue and a turn in it, taken before the call's transaction.
        std::pair<std::string, int64_t> queue;
        if (lead.responsible_user_id() == 0) {
          queue = TakeApiQueueTurn(connection);
        }
        pqxx::work work(connection);
        Lead row{.title = title,
                 .status = lead.status_id().empty() ? "NEW" : lead.status_id(),
                 .source = lead.source_id().empty() ? "WALK_IN" : lead.source_id(),
                 .first_name = lead.first_name(),
                 .last_name = lead.last_name(),
                 .company_name = lead.company_name(),
                 .city = lead.city(),
                 .comments = lead.comments(),
                 .responsible_user_id = lead.responsible_user_id()};
        if (absl::Status manual = CheckManualStatus(work, row.status); !manual.ok()) {
          return manual;
        }
        if (absl::Status known = CheckKnown(work, StatusKind::kSource, row.source); !known.ok()) {
          return known;
        }
        // The same identity locks as the inbound consumer, so an event of this visitor processed
        // meanwhile joins this lead instead of making a second one.
        std::vector<IdentityKey> keys;
        std::vector<std::string> lock_keys;
        for (const std::string& phone : phones) {
          keys.push_back({"PHONE", phone});
        }
        for (const std::string& email : emails) {
          keys.push_back({"EMAIL", email});
        }
        if (request->upsert_by_identity() && keys.empty()) {
          // Nothing to find the person by: each retry of the call would make one more lead.
          return absl::InvalidArgumentError(
              "upsert_by_identity needs a phone or an email to find the existing record by");
        }
        for (const IdentityKey& key : keys) {
          lock_keys.push_back(IdentityLockKey(key));
        }
        EventRepository(work).LockIdentities(lock_keys);
        if (absl::Status check = CheckUserActive(work, row.responsible_user_id); !check.ok()) {
          return check;
        }
        if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
          return check;
        }
        // Simple mode has no leads: inbound traffic makes contacts and deals, and a lead made
        // here would take the person's later messages away from them (docs/domain.md).
        const InboundSettings settings = InboundRepository(work).ReadSettings();
        if (settings.mode == domain::CrmMode::kSimple) {
          return absl::FailedPreconditionError(
              "the CRM is in simple mode, which has no leads: create a contact (CreateContact, "
              "upsert_by_identity finds an existing one) and a deal (CreateDeal), or switch to "
              "classic mode (UpdateSettings)");
        }
        LeadRepository leads(work);
        int64_t previous_lead_id = 0;
        int64_t link_contact_id = 0;
        int64_t link_company_id = 0;
        if (request->upsert_by_identity() && !keys.empty()) {
          UpsertDone done;
          auto decided = UpsertLead(work, keys, *user, title, lead, row.responsible_user_id,
                                    settings, backend_.max_record_identities, done);
          if (!decided.ok()) {
            return decided.status();
          }
          if (done.outcome == v1::UPSERT_OUTCOME_EXISTING) {
            absl::Status loaded = LoadLead(work, done.lead_id, response);
            response->set_upsert_outcome(done.outcome);
            work.commit();
            return loaded;
          }
          if (done.outcome == v1::UPSERT_OUTCOME_ACTIVITY) {
            response->set_upsert_outcome(done.outcome);
            response->mutable_upsert_target()->set_type(KindOwnerType(done.target.kind));
            response->mutable_upsert_target()->set_id(done.target.id);
            response->set_upsert_activity_id(done.activity_id);
            work.commit();
            return absl::OkStatus();
          }
          if (done.outcome == v1::UPSERT_OUTCOME_RETURNING_LEAD) {
            previous_lead_id = done.previous_lead_id;
            link_contact_id = done.link_contact_id;
            link_company_id = done.link_company_id;
            if (row.responsible_user_id == 0) row.responsible_user_id = done.responsible_user_id;
          }
        }
        if (row.responsible_user_id == 0) {
          row.responsible_user_id = UserRepository(work).QueueUser(queue.first, queue.second);
        }
        // One person, one lead: an open lead holding one of the identities is that person's
        // (under the identity locks taken above, as the consumer takes them).
        if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
                work, domain::EntityKind::kLead, 0, keys,
                "send upsert_by_identity to add this request to that lead, or close or convert "
                "it first");
            !apart.ok()) {
          return apart;
        }
        const int64_t id = leads.Insert(row);
        for (const IdentityKey& key : keys) {
          leads.AddIdentity(id, key);
        }
        const bool returning =
            previous_lead_id != 0 || link_contact_id != 0 || link_company_id != 0;
        if (returning) {
          leads.MarkReturning(id, previous_lead_id, link_contact_id, link_company_id);
        }
        SetLeadSearchKeys(work, id, row.first_name, row.last_name, row.company_name);
        HistoryRepository(work).Append(HistoryRecord{
            .entity_type = "LEAD", .entity_id = id, .kind = "CREATED", .user_id = *user});
        absl::Status loaded = LoadLead(work, id, response);
        if (request->upsert_by_identity()) {
          response->set_upsert_outcome(returning ? v1::UPSERT_OUTCOME_RETURNING_LEAD
                                                 : v1::UPSERT_OUTCOME_CREATED);
        }
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* LeadApi::UpdateLead(grpc::CallbackServerContext* context,
                                              const v1::UpdateLeadRequest* request,
                                              v1::Lead* response) {
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        const v1::Lead& lead = request->lead();
        if (absl::Status retired = RefuseRetiredFields(lead); !retired.ok()) {
          return retired;
        }
        auto user = ActingUser(context);
        if (!user.ok()) {
          return user.status();
        }
        auto paths = UpdatePaths(request->update_mask(),
                                 {"title", "status_id", "first_name", "last_name", "company_name",
                                  "city", "comments", "responsible_user_id"},
                                 v1::Lead::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        auto has = [&](const char* path) { return paths->count(path) != 0; };
        if (has("status_id") && lead.status_id().empty()) {
          return absl::InvalidArgumentError("status_id must be a lead status id");
        }
        // Spaces are no title, as CreateLead reads them: a blank title showed as nothing in
        // every list and in FindByCommunication's display_name.
        if (has("title") && domain::TrimAscii(lead.title()).empty()) {
          return absl::InvalidArgumentError("title cannot be blank");
        }
        if (absl::Status text = CheckLeadText(lead); !text.ok()) {
          return text;
        }
        auto expected_version = ParseEtag(lead.etag());
        if (!expected_version.ok()) {
          return expected_version.status();
        }
        pqxx::work work(connection);
        if (has("status_id")) {
          if (absl::Status known = CheckKnown(work, StatusKind::kLeadStatus, lead.status_id());
              !known.ok()) {
            return known;
          }
        }
        if (has("responsible_user_id")) {
          if (absl::Status check = CheckUserActive(work, lead.responsible_user_id()); !check.ok()) {
            return check;
          }
        }
        if (absl::Status check = CheckActiveUser(work, *user, "user"); !check.ok()) {
          return check;
        }
        // A status change locks the lead first, so that a conversion committing meanwhile is
        // seen: a converted lead keeps its status (domain::CheckStatusChange). Its identities are
        // locked before its row, in the consumer's order (as ConvertLead takes them), so that a
        // reopening and a batch or CreateLead on the same person see each other.
        std::optional<domain::LeadToConvert> locked;
        if (has("status_id")) {
          ConversionRepository conversions(work);
          const std::vector<domain::Identity> identities = conversions.LeadIdentities(lead.id());
          LockIdentityKeys(work, LeadKeys(identities));
          int64_t merged_into = 0;
          locked = conversions.LockLead(lead.id(), &merged_into);
          if (locked && locked->identities != identities) {
            LockIdentityKeys(work, LeadKeys(locked->identities));
          }
        }
        v1::Lead before;
        if (absl::Status found = LoadLead(work, lead.id(), &before); !found.ok()) {
          return found;
        }
        if (has("status_id") && lead.status_id() != before.status_id()) {
          if (locked) {
            if (absl::Status kept = domain::CheckStatusChange(*locked); !kept.ok()) {
              return kept;
            }
          }
          if (absl::Status manual = CheckManualStatus(work, lead.status_id()); !manual.ok()) {
            return manual;
          }
          // Reopening a closed lead (junk back to an open status): one person, one open lead, as
          // CreateLead holds it. A lead made for the person meanwhile holds their phone or email.
          if (locked && locked->status_semantics != domain::Semantics::kProcess) {
            const std::optional<StatusEntry> next =
                StatusRepository(work, StatusKind::kLeadStatus).Get(lead.status_id());
            if (next && next->semantics == domain::Semantics::kProcess) {
              if (absl::Status apart = RefuseIdentitiesHeldElsewhere(
                      work, domain::EntityKind::kLead, lead.id(), LeadKeys(locked->identities),
                      "close or convert that lead first, or merge this lead into it (MergeLeads) "
                      "if "
                      "they are one person");
                  !apart.ok()) {
                return apart;
              }
            }
          }
        }
        LeadRepository leads(work);
        Lead values{.title = lead.title(),
                    .status = lead.status_id(),
                    .first_name = lead.first_name(),
                    .last_name = lead.last_name(),
                    .company_name = lead.company_name(),
                    .city = lead.city(),
                    .comments = lead.comments(),
                    .responsible_user_id = lead.responsible_user_id()};
        // The store names the column: status (the mask names the field, status_id).
        std::set<std::string> columns = *paths;
        if (columns.erase("status_id") != 0) {
          columns.insert("status");
        }
        if (!leads.Update(lead.id(), *expected_version, columns, values)) {
          if (!leads.Exists(lead.id())) {
            return NotLive(work, domain::EntityKind::kLead, lead.id());
          }
          return absl::AbortedError("the lead changed since this etag was read; read it again");
        }
        absl::Status loaded = LoadLead(work, lead.id(), response);
        if (loaded.ok()) {
          std::vector<HistoryRecord> history;
          for (const auto& [field, old_value, new_value] :
               {std::tuple{"title", before.title(), response->title()},
                {"first_name", before.first_name(), response->first_name()},
                {"last_name", before.last_name(), response->last_name()},
                {"company_name", before.company_name(), response->company_name()},
                {"city", before.city(), response->city()},
                {"comments", before.comments(), response->comments()},
                {"responsible_user_id", std::to_string(before.responsible_user_id()),
                 std::to_string(response->responsible_user_id())}}) {
            RecordChange(history, "LEAD", lead.id(), *user, field, old_value, new_value);
          }
          if (before.status_id() != response->status_id()) {
            history.push_back({.entity_type = "LEAD",
                               .entity_id = lead.id(),
                               .kind = "STATUS_CHANGED",
                               .field = "status",
                               .old_value = before.status_id(),
                               .new_value = response->status_id(),
                               .user_id = *user});
          }
          HistoryRepository(work).Append(history);
          SetLeadSearchKeys(work, lead.id(), response->first_name(), response->last_name(),
                            response->company_name());
        }
        work.commit();
        return loaded;
      });
}

grpc::ServerUnaryReactor* LeadApi::MergeLeads(grpc::CallbackServerContext* context,
                                              const v1::MergeLeadsRequest* request,
                                              v1::MergeLeadsResponse* response) {
  const size_t max_identities = backend_.max_record_identities;  // copied: no `this` in the lambda
  metrics::Counter* dropped = backend_.fold_recordings_dropped;
  metrics::Family<metrics::Counter>* summarised = backend_.merges_links_summarised;
  return RunCall(
      context, __func__, backend_, Right::kWriteCrm, response, [=](pqxx::connection& connection) {
        std::vector<int64_t> folded(request->folded_ids().begin(), request->folded_ids().end());
        auto done = MergeRecords(connection, context, max_identities, "LEAD", request->kept_id(),
                                 folded, dropped);
        if (!done.ok()) {
          return done.status();
        }
        CountSummarisedMerge(summarised, "LEAD", *done);
        for (int64_t id : done->folded) {
          response->add_folded_ids(id);
        }
        response->set_kept_id(request->kept_id());
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
