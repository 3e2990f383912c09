#pragma once

// The plan of LeadService.ConvertLead: which records a lead turns into, what they get from it,
// and what happens to the lead. No I/O: the store reads the lead (and resolves the pipeline),
// writes the plan in one transaction, and records it under the request id (conversions table)
// so that a retry with the same request id returns the first result instead of converting twice.
//
// Decisions written down:
//  - Existing ids are always links: a contact_id/company_id given fills that role instead of
//    creating it (when the role is in `produce`), or links the created records to it (when it is
//    not: produce=COMPANY with contact_id makes a company linked to that contact).
//  - The contact gets every identity of the lead (phones, emails, messenger ids), so later
//    inbound traffic from this person finds the contact and its deal, not a new lead.
//  - A new contact is named by naming's ContactName: a lead whose whole name sits in first_name
//    ("Jean Dupont", last name empty, as many web forms send it) gives Jean / Dupont; the
//    last-name placeholder only when there is one word.
//  - A new company is named by the lead's company name, never by anything else: a company is a
//    legal entity, and a lead's title ("Jean Dupont – Website form") or the person's name is not
//    one. A lead with no company name asked to produce a company is FAILED_PRECONDITION (set the
//    lead's company_name, give company_id, or produce no company), as Bitrix24's conversion asks
//    for the missing company title instead of inventing one.
//  - The company gets the lead's identities only when no contact takes part in the conversion. A
//  lead's phones and emails are the person's: put on
//    the company too they would make every later call from that person match the company as well,
//    and a switchboard-style identity shared by several contacts is what makes the company the
//    fallback target. With no contact, the company is the only record the person can be found by.
//  - The lead's activities follow it: to the deal when one is produced (that is where the sale
//    continues), else to the contact, else to the company.
//  - The lead's status becomes the SUCCESS status (seeded CONVERTED) and it links to what it
//    produced. A lead is known converted by its status's semantics (or by what it produced),
//    never by the status's id.
//  - A deal needs a contact or a company: produce=DEAL alone needs contact_id or company_id.
//  - Only an open lead (status semantics PROCESS) converts: a converted one is
//    FAILED_PRECONDITION naming what it produced; one closed otherwise (JUNK) must be reopened.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm::domain {

/// What ConvertLead produces.
enum class Produce {
  kContactCompanyDeal,
  kContactCompany,
  kContactDeal,
  kContact,
  kCompany,
  kDeal
};

/// "CONTACT_COMPANY_DEAL", "CONTACT_COMPANY", "CONTACT_DEAL", "CONTACT", "COMPANY", "DEAL"
/// (conversions.produce; conversion.proto's ConversionProduce without its prefix).
std::string_view ToString(Produce produce);
std::optional<Produce> ParseProduce(std::string_view text);

/// What a converted lead produced (leads.converted_* columns; conversions row).
struct Produced {
  std::optional<int64_t> contact_id;
  std::optional<int64_t> company_id;
  std::optional<int64_t> deal_id;
  bool empty() const { return !contact_id && !company_id && !deal_id; }
};

/// "contact 5, company 7, deal 9".
std::string Describe(const Produced& produced);

struct LeadToConvert {
  int64_t id = 0;
  std::string title;
  std::string status_id;  // lead_statuses.id
  Semantics status_semantics = Semantics::kProcess;
  std::string first_name;
  std::string last_name;
  std::string company_name;
  std::string source_id;
  int64_t responsible_user_id = 0;
  std::vector<Identity> identities;
  /// Non-empty when it was converted already.
  Produced produced;
};

struct ConversionOptions {
  Produce produce = Produce::kContactCompanyDeal;
  std::optional<int64_t> contact_id;  // an existing contact instead of a new one
  std::optional<int64_t> company_id;  // an existing company instead of a new one
  /// The deal's pipeline and its first stage (the caller resolves the request's pipeline_id, or
  /// crm_settings.inbound_pipeline_id when none was given). Ignored when no deal is produced.
  int64_t pipeline_id = 0;
  std::string first_stage_id;
  /// True when the request named a pipeline: then a conversion without a deal is refused,
  /// since the caller evidently expected one.
  bool pipeline_requested = false;
  std::string last_name_placeholder = "Unknown";
  /// The lead status with SUCCESS semantics (lead_statuses; seeded CONVERTED), which the lead
  /// takes. The store reads it: code knows statuses by their semantics only.
  std::string success_status_id;
};

struct NewContact {
  std::string first_name;
  std::string last_name;
  bool last_is_placeholder = false;
};

struct NewCompany {
  std::string name;
};

struct NewDeal {
  std::string title;
  int64_t pipeline_id = 0;
  std::string stage_id;
};

/// Which record of the conversion something refers to; ids of new records exist only once the
/// store has inserted them.
enum class Slot { kLead, kContact, kCompany, kDeal };

struct PlannedHistory {
  Slot subject = Slot::kLead;
  std::string kind;  // CREATED, CONVERTED, LINKED (common.proto's HistoryEntry.kind)
  std::optional<Slot> related;
};

struct ConversionPlan {
  /// Exactly one of create_*/use_* per role taking part; neither when the role has no part.
  std::optional<NewContact> create_contact;
  std::optional<int64_t> use_contact_id;
  std::optional<NewCompany> create_company;
  std::optional<int64_t> use_company_id;
  std::optional<NewDeal> create_deal;
  /// Responsible, source and lead_id of every created record come from the lead.
  int64_t responsible_user_id = 0;
  std::string source_id;
  /// Added to the contact / company (the store skips ones it already has).
  std::vector<Identity> contact_identities;
  std::vector<Identity> company_identities;
  /// contact ↔ company (role empty), deal ↔ contact, deal.company: made when both sides take part.
  bool link_contact_company = false;
  bool link_deal_contact = false;
  bool link_deal_company = false;
  /// Where the lead's activities move (kDeal, kContact or kCompany).
  Slot activities_to = Slot::kDeal;
  /// The lead's new status: the SUCCESS status.
  std::string lead_status_id;
  std::vector<PlannedHistory> history;
};

/// A converted lead keeps its status: leaving the SUCCESS status (by UpdateLead, or any other
/// way a lead's status changes) would reopen a lead whose person now lives on what it produced,
/// so that their later messages went to the lead, and it could never be converted again.
/// FAILED_PRECONDITION naming what it produced; OK for a lead not converted.
absl::Status CheckStatusChange(const LeadToConvert& lead);

/// INVALID_ARGUMENT for options that cannot be met; FAILED_PRECONDITION for a lead that is not
/// open (converted: the message names what it produced) or that has no company name for a
/// company to create.
absl::StatusOr<ConversionPlan> PlanConversion(const LeadToConvert& lead,
                                              const ConversionOptions& options);

}  // namespace leadflow::crm::domain
