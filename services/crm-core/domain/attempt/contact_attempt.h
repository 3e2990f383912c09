#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crm-core/domain/call/call.h"
#include "crm-core/domain/identity/identity_key.h"

namespace leadflow::crm {

/// One inbound contact, whatever channel it came by: who, how to reach them, what they want,
/// which activity it implies, and where it came from. Each channel (inbound/channels/) turns
/// its payload into one; the inbound rules read only this, never a payload.
struct ContactAttempt {
  std::string event_id;

  // Who: what they told about themselves, and the normalised ways to reach them.
  struct Person {
    std::string first_name;
    std::string last_name;
    std::string company;
    std::string city;
  } person;
  std::vector<IdentityKey> identities;
  // How to tell the person apart when they gave no name (no first or last name, no messenger
  // display name): the way they reached us, written for reading — the email address,
  // "+33 6 12 34 56 78", "telegram:123". A contact made for them has it as its first name, beside
  // the placeholder last name (the planner; docs/domain.md, "Contacts nobody named"). Empty when
  // they gave a name, or left no identity (a withheld number).
  std::string unnamed_as;
  // Ways to reach them that may find their record but are never added to one (an email's
  // Reply-To: anyone can write any address there). When a record is found through one of these,
  // none of the attempt's identities are added to any record.
  std::vector<IdentityKey> match_only;

  // What they want: their words (a lead's comments), and the parts of a lead title
  // ({city}, {name}, {company}, {need}, {form}…) with the title to use when the template
  // renders nothing ("Missed call +33612345678").
  std::string comments;
  std::map<std::string, std::string> title_parts;
  std::string fallback_title;

  // The activity it implies, on a new lead or on the open lead it joins.
  struct Activity {
    std::string type;            // TASK, EMAIL, CALL, …
    std::string subject;         // on a new lead
    std::string repeat_subject;  // on an open lead it joins
    std::string description;
    bool completed = false;     // e.g. an answered call: done already
    bool has_deadline = false;  // the rules' deadline from now (RuleSettings::task_deadline)
  } activity;

  // Where it came from: a lead source id (WEB_FORM, EMAIL, …) and what the channel told about
  // it (reference, page_url, utm_source, field:<name>, subject, …), stored with the lead.
  std::string source_id;
  std::map<std::string, std::string> source_details;

  // Where its new records go when the address or line it came in on has a route of its own
  // (email_routes: sales@ and support@): the queue new leads and deals rotate over instead of the
  // channel's, and the pipeline (with its first stage) of new deals instead of the inbound one.
  // Empty or 0: the defaults.
  struct Route {
    std::string queue;
    int64_t pipeline_id = 0;
    std::string first_stage_id;
  } route;
  // A phone call's facts (inbound/channels/call.cc): the call rules (domain/call/) apply on top
  // of the usual ones. Unset for the other channels.
  std::optional<domain::CallFacts> call;
};

}  // namespace leadflow::crm
