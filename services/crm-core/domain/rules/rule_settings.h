#pragma once

#include <chrono>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "crm-core/domain/email/thread.h"

namespace leadflow::crm {

/// Settings of the inbound rules (ARCHITECTURE.md, "Inbound processing rules").
struct RuleSettings {
  std::string title_template = "{city} – {name} – {need}";
  /// Deadline of the activity an inbound contact implies ("process the request", "call back"),
  /// from the moment the event is processed.
  std::chrono::minutes task_deadline{60};
  /// Identities a lead may hold through inbound traffic. Past it, an event still joins the lead
  /// (an activity, a repeat) but adds no identity: otherwise anyone who knows a person's phone
  /// could attach any number of addresses to their lead, and every later batch would lock and
  /// read them all.
  size_t max_inbound_identities = 20;
  /// Email: our addresses (normalised, lower case) whose mail's Reply-To may find the sender's
  /// record, as a form relay writes from a robot address with the person in Reply-To. Mail to
  /// any other address is matched by its From only: anyone can write any Reply-To. Empty (the
  /// default): never.
  std::set<std::string> reply_to_trusted_mailboxes;
  /// Email: a reply naming a kept message joins its thread from an address new to it when it is
  /// written from the domain of one of the thread's senders or of its record's addresses
  /// (a colleague at the customer's company) — except these public mail providers' domains
  /// (domain::DefaultPublicMailDomains' form: a domain or "name.*"), where a shared domain says
  /// nothing, and `own_mail_domains` (lower case), ours: our staff's, our recipient domains (the
  /// domains of the addresses the thread's mail came in through and of the email routes count as
  /// ours without being listed).
  std::vector<std::string> public_mail_domains = domain::DefaultPublicMailDomains();
  std::set<std::string> own_mail_domains;
  /// Email: messages kept with their content per thread and per record. Past either, a message
  /// still has its effect (it joins or opens the reply activity) and its headers are kept for
  /// threading and duplicates, but not its text, recipients, references or attachment list.
  size_t max_messages_per_thread = 500;
  size_t max_messages_per_record = 5000;
};

}  // namespace leadflow::crm
