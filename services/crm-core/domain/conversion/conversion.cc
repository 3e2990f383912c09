#include "crm-core/domain/conversion/conversion.h"

#include <utility>

#include "crm-core/domain/common/text.h"
#include "crm-core/domain/naming/naming.h"

namespace leadflow::crm::domain {

namespace {

constexpr std::pair<Produce, std::string_view> kProduceNames[] = {
    {Produce::kContactCompanyDeal, "CONTACT_COMPANY_DEAL"},
    {Produce::kContactCompany, "CONTACT_COMPANY"},
    {Produce::kContactDeal, "CONTACT_DEAL"},
    {Produce::kContact, "CONTACT"},
    {Produce::kCompany, "COMPANY"},
    {Produce::kDeal, "DEAL"}};

}  // namespace

std::string_view ToString(Produce produce) {
  for (const auto& [value, name] : kProduceNames) {
    if (value == produce) return name;
  }
  return "CONTACT_COMPANY_DEAL";
}

std::optional<Produce> ParseProduce(std::string_view text) {
  for (const auto& [value, name] : kProduceNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

std::string Describe(const Produced& produced) {
  std::string text;
  auto add = [&](std::string_view noun, const std::optional<int64_t>& id) {
    if (!id) return;
    if (!text.empty()) text += ", ";
    text += Cat(noun, " ", *id);
  };
  add("contact", produced.contact_id);
  add("company", produced.company_id);
  add("deal", produced.deal_id);
  return text.empty() ? "nothing" : text;
}

absl::Status CheckStatusChange(const LeadToConvert& lead) {
  if (lead.produced.empty() && lead.status_semantics != Semantics::kSuccess) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      Cat("lead ", lead.id, " is converted",
          lead.produced.empty() ? Cat(" (status ", lead.status_id, ")")
                                : Cat(" into ", Describe(lead.produced)),
          "; its status cannot change: work on what it produced instead"));
}

absl::StatusOr<ConversionPlan> PlanConversion(const LeadToConvert& lead,
                                              const ConversionOptions& options) {
  if (!lead.produced.empty() || lead.status_semantics == Semantics::kSuccess) {
    return absl::FailedPreconditionError(
        lead.produced.empty()
            ? Cat("lead ", lead.id, " is already converted (status ", lead.status_id, ")")
            : Cat("lead ", lead.id, " is already converted into ", Describe(lead.produced)));
  }
  if (lead.status_semantics != Semantics::kProcess) {
    return absl::FailedPreconditionError(
        Cat("lead ", lead.id, " is closed (status ", lead.status_id,
            "); move it back to an open status before converting it"));
  }
  if (options.success_status_id.empty()) {
    return absl::FailedPreconditionError(
        "no lead status has SUCCESS semantics: StatusService must define the conversion status");
  }
  bool contact_role = options.produce == Produce::kContactCompanyDeal ||
                      options.produce == Produce::kContactCompany ||
                      options.produce == Produce::kContactDeal ||
                      options.produce == Produce::kContact;
  bool company_role = options.produce == Produce::kContactCompanyDeal ||
                      options.produce == Produce::kContactCompany ||
                      options.produce == Produce::kCompany;
  bool deal_role = options.produce == Produce::kContactCompanyDeal ||
                   options.produce == Produce::kContactDeal || options.produce == Produce::kDeal;
  if (options.contact_id && *options.contact_id <= 0) {
    return absl::InvalidArgumentError(Cat("contact_id ", *options.contact_id, " is not an id"));
  }
  if (options.company_id && *options.company_id <= 0) {
    return absl::InvalidArgumentError(Cat("company_id ", *options.company_id, " is not an id"));
  }
  bool has_contact = contact_role || options.contact_id.has_value();
  bool has_company = company_role || options.company_id.has_value();
  if (deal_role && !has_contact && !has_company) {
    return absl::InvalidArgumentError(
        "a deal needs a contact or a company: produce one with it, or give contact_id or "
        "company_id");
  }
  if (!deal_role && options.pipeline_requested) {
    return absl::InvalidArgumentError(
        "pipeline_id is given but the conversion produces no deal; produce a deal or leave it out");
  }
  if (deal_role && (options.pipeline_id <= 0 || options.first_stage_id.empty())) {
    return absl::InvalidArgumentError("the conversion produces a deal but no pipeline is known");
  }

  ConversionPlan plan;
  plan.lead_status_id = options.success_status_id;
  plan.responsible_user_id = lead.responsible_user_id;
  plan.source_id = lead.source_id;
  if (has_contact) {
    if (options.contact_id) {
      plan.use_contact_id = options.contact_id;
    } else {
      PersonName name = ContactName(lead.first_name, lead.last_name, options.last_name_placeholder);
      NewContact contact{.first_name = std::move(name.first),
                         .last_name = std::move(name.last),
                         .last_is_placeholder = name.last_is_placeholder};
      if (contact.first_name.empty() && !lead.identities.empty()) {
        contact.first_name = lead.identities.front().value;  // nameless: known by how to reach
      }
      plan.create_contact = std::move(contact);
    }
    plan.contact_identities = lead.identities;
  }
  if (has_company) {
    if (options.company_id) {
      plan.use_company_id = options.company_id;
    } else {
      std::string name(TrimAscii(lead.company_name));
      if (name.empty()) {
        return absl::FailedPreconditionError(
            Cat("lead ", lead.id,
                " has no company name to give the new company: set the lead's company_name "
                "(UpdateLead), give company_id, or convert without a company"));
      }
      plan.create_company = NewCompany{std::move(name)};
    }
    if (!has_contact) plan.company_identities = lead.identities;
  }
  if (deal_role) {
    std::string title(TrimAscii(lead.title));
    plan.create_deal = NewDeal{title.empty() ? Cat("Deal from lead ", lead.id) : title,
                               options.pipeline_id, options.first_stage_id};
  }
  plan.link_contact_company = has_contact && has_company;
  plan.link_deal_contact = deal_role && has_contact;
  plan.link_deal_company = deal_role && has_company;
  plan.activities_to = deal_role ? Slot::kDeal : has_contact ? Slot::kContact : Slot::kCompany;

  // History: the lead's CONVERTED entries, each created contact's and company's CREATED
  // (related: the lead), and the links.
  auto created = [&](Slot slot) { plan.history.push_back({slot, "CREATED", Slot::kLead}); };
  auto converted = [&](Slot slot) { plan.history.push_back({Slot::kLead, "CONVERTED", slot}); };
  if (has_contact) {
    converted(Slot::kContact);
    if (plan.create_contact) created(Slot::kContact);
  }
  if (has_company) {
    converted(Slot::kCompany);
    if (plan.create_company) created(Slot::kCompany);
  }
  if (deal_role) {
    // The deal's one CREATED entry is the store's (the stage it starts in, related: the lead it
    // came from, DealRepository::Insert): a second one here read as two creations.
    converted(Slot::kDeal);
  }
  auto linked = [&](Slot a, Slot b) {
    plan.history.push_back({a, "LINKED", b});
    plan.history.push_back({b, "LINKED", a});
  };
  if (plan.link_contact_company) linked(Slot::kContact, Slot::kCompany);
  if (plan.link_deal_contact) linked(Slot::kDeal, Slot::kContact);
  if (plan.link_deal_company) linked(Slot::kDeal, Slot::kCompany);
  return plan;
}

}  // namespace leadflow::crm::domain
