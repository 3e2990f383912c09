#pragma once

// Person resolution across leads, contacts and companies: given every record that holds one of
// the identities of one inbound contact attempt (read under the identities' advisory locks), the
// decision of what the attempt does. No I/O: the inbound planner gathers the candidates and
// writes the decision (ARCHITECTURE.md, "Inbound processing rules"; issue "The CRM domain" §4).
//
// Precedence, first rule that applies wins:
//  1. An open lead (status semantics PROCESS) → the activity goes on it and its repeat count
//     grows, exactly as before contacts existed. With several open leads, the newest (highest
//     id): the one this person's latest traffic made, as the consumer has always chosen.
//  2. An open deal of a matched contact → the activity goes on the newest open deal (highest
//     id) across all matched contacts. Letters and calls attach to the person first.
//  3. An open deal of a matched company → the newest open deal across matched companies.
//  4. Contacts or companies matched, nothing open (a returning customer):
//       repeat rule on,  classic mode → a returning lead, linked to the contact/company and to the
//                                       newest earlier lead of this person, if any;
//       repeat rule on,  simple mode  → a new deal in the inbound pipeline's first stage, linked
//                                       to the contact and/or company;
//       repeat rule off, either mode  → only an activity on the contact (or company).
//     "The contact" is the obvious representative: the only matched contact; when several
//     contacts match (a shared switchboard number) and a company matches too, the company is used
//     instead; when several contacts match and no company, the oldest contact.
//  5. Only closed leads matched (no contact or company): classic → a new lead marked returning,
//     linked to the newest closed lead (today's behaviour; junk that comes back is a good
//     prospect); simple → as rule 6.
//  6. Nothing matched: classic → a new lead; simple → a new contact (last name the placeholder
//     when unknown) and a new deal in the inbound pipeline's first stage.
//
// Responsible user: the target record's responsible when it has one (rules 1–3, and the
// activity-only branch of 4); for a new record, whoever was responsible for this client before —
// the chosen contact, then the company, then the newest matched lead — else round-robin over a
// queue: "pipeline:<id>" for new deals (simple mode), "channel:<CHANNEL>" for new leads, unless
// crm_settings names another queue for that channel (the caller passes it). Callers pass 0 as
// responsible for users who are deactivated, so they never get new work.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crm-core/domain/common/types.h"

namespace leadflow::crm::domain {

struct LeadCandidate {
  int64_t id = 0;
  Semantics status_semantics = Semantics::kProcess;
  int64_t responsible_user_id = 0;  // 0: none (or deactivated)
};

struct OpenDeal {
  int64_t id = 0;
  int64_t responsible_user_id = 0;
};

/// A contact or company holding one of the identities, with its open deals.
struct PartyCandidate {
  int64_t id = 0;
  int64_t responsible_user_id = 0;
  std::vector<OpenDeal> open_deals;  // any order
};

struct MatchInput {
  std::vector<LeadCandidate> leads;
  std::vector<PartyCandidate> contacts;
  std::vector<PartyCandidate> companies;
  CrmMode mode = CrmMode::kClassic;
  /// crm_settings.repeat_rule: a returning customer with nothing open gets a repeat lead (a deal
  /// in simple mode); off: only an activity on the contact.
  bool repeat_rule = true;
  /// The channel the attempt came on (WEB_FORM, EMAIL, CALL, MESSENGER, …).
  std::string channel;
  /// The queue crm_settings names for this channel; empty means "channel:<CHANNEL>".
  std::string channel_queue;
  /// The queue the attempt's own route names (an email alias such as support@); when set, new
  /// leads and new deals rotate over it instead of the channel's or the pipeline's queue.
  std::string route_queue;
  /// crm_settings.inbound_pipeline_id and its first stage: where simple-mode deals start.
  int64_t inbound_pipeline_id = 0;
  std::string inbound_first_stage_id;
};

enum class MatchAction {
  kActivityOnLead,     // rule 1: activity on `target` (a lead), repeat count +1
  kActivityOnDeal,     // rules 2, 3: activity on `target` (a deal)
  kActivityOnParty,    // rule 4, repeat rule off: activity on `target` (contact or company)
  kReturningLead,      // rules 4 (classic) and 5: a new lead, is_returning
  kDealForExisting,    // rule 4 (simple): a new deal for the matched contact/company
  kNewLead,            // rule 6 (classic)
  kNewContactAndDeal,  // rules 5, 6 (simple)
};

/// Who gets the work: a user, or the next user of a round-robin queue.
struct Responsible {
  int64_t user_id = 0;  // > 0: this user
  std::string queue;    // otherwise: round-robin over this queue
  friend bool operator==(const Responsible&, const Responsible&) = default;
};

struct MatchDecision {
  MatchAction action = MatchAction::kNewLead;
  /// The existing record the activity goes on (kActivityOn*); unset otherwise.
  std::optional<EntityRef> target;
  /// kActivityOnLead: the lead's repeat count grows by one.
  bool increment_repeat = false;
  /// New records link to these (kReturningLead, kDealForExisting).
  std::optional<int64_t> link_contact_id;
  std::optional<int64_t> link_company_id;
  /// kReturningLead: the newest earlier lead of this person.
  std::optional<int64_t> previous_lead_id;
  /// kDealForExisting, kNewContactAndDeal: where the new deal starts.
  int64_t deal_pipeline_id = 0;
  std::string deal_stage_id;
  Responsible responsible;
  /// One sentence for logs and history: which rule applied and why.
  std::string reason;
};

MatchDecision Decide(const MatchInput& input);

/// The channel of records created over the API (CreateLead): its queue is "channel:API" unless
/// crm_settings names another.
inline constexpr char kApiChannel[] = "API";

/// "channel:EMAIL", "pipeline:3": the assignment_queues keys.
std::string ChannelQueue(std::string_view channel);
std::string PipelineQueue(int64_t pipeline_id);

}  // namespace leadflow::crm::domain
