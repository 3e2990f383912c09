// Fuzz target: what crm-core does with a Kafka message's bytes before any database work, exactly
// as BatchProcessor::Process does it: decode the InboundEvent protobuf, validate it
// (ValidateEvent: the dead-letter reasons), turn it into its channel's contact attempt, and plan
// its effects (Planner) against an empty snapshot and against a known, closed lead.

#include "crm-core/inbound/channels/channels.h"
#include "crm-core/inbound/planner.h"
#include "fuzz/fuzz.h"

namespace {

using leadflow::fuzz::Check;

// The decode and validation steps: if they move, these are the lines to change.
bool Decode(std::string_view bytes, leadflow::events::v1::InboundEvent* event) {
  return event->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}
std::string Validate(const leadflow::events::v1::InboundEvent& event) {
  return leadflow::crm::ValidateEvent(event);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace crm = leadflow::crm;
  leadflow::events::v1::InboundEvent event;
  if (!Decode(leadflow::fuzz::AsText(data, size), &event)) {
    return 0;  // dead-lettered as undecodable
  }
  if (!Validate(event).empty()) {
    return 0;  // dead-lettered with the reason
  }
  const crm::ContactAttempt attempt = crm::ToContactAttempt(event);
  {
    crm::Planner planner(crm::RuleSettings{}, {}, {1, 2});
    planner.Add(attempt);
    const crm::Plan& plan = planner.plan();
    Check(plan.leads.size() == 1, "a valid event from nobody known makes one lead");
    Check(plan.activities.size() == 1, "a valid event makes one activity");
    Check(plan.activities[0].origin_event_id == event.event_id(), "the activity names its event");
    Check(!plan.leads[0].title.empty(), "a lead always has a title");
    planner.Add(attempt);  // the same person again joins the lead made just before
    Check(planner.plan().leads.size() == 1, "one person, one lead within a batch");
  }
  {
    crm::KnownLead closed;
    closed.id = 7;
    closed.semantics = crm::Semantics::kFailure;
    closed.responsible_user_id = 1;
    const auto& first = event.identities(0);
    closed.identities.insert({crm::IdentityKindName(first.kind()), first.value()});
    crm::Planner planner(crm::RuleSettings{}, {closed}, {1});
    planner.Add(attempt);
    Check(planner.plan().leads.size() == 1, "a closed lead's person comes back as one lead");
    Check(planner.plan().leads[0].previous_lead_id == 7, "the returning lead links the old one");
  }
  return 0;
}
