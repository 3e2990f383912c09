// An email: a lead with an open email activity "reply" (ARCHITECTURE.md, inbound rules).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/domain/email/thread.h"
#include "crm-core/inbound/channels/channels.h"

namespace leadflow::crm {

void FromEmail(const events::v1::InboundEvent& event, ContactAttempt& attempt) {
  const events::v1::EmailMessage& email = event.email();
  // A relay sender (a form builder mailing on behalf of the person in Reply-To) is nobody's
  // address: never an identity, never matched. ValidateEvent refuses an email whose only identity
  // it is.
  const std::string relay = RelayAddress(email);
  if (!relay.empty()) {
    std::erase_if(attempt.identities, [&](const IdentityKey& key) {
      return key.kind == "EMAIL" && domain::AsciiLower(domain::TrimAscii(key.value)) == relay;
    });
  }
  const std::string need = Need(email.subject().empty() ? email.text_body() : email.subject());
  const std::string from =
      email.from_address().empty() ? event.identities(0).value() : email.from_address();
  attempt.comments = email.text_body();
  attempt.title_parts["need"] = need;
  // No display name: the sender's address stands for the name, as in Bitrix24 — in the title
  // ("jean@example.org – Devis", not the subject alone) and as the first name, so that a contact
  // made from it is that address with the placeholder last name (naming's ContactName), never
  // "Unknown" alone, and never a name made up from the local part.
  if (PersonName(event).empty() && event.person().company().empty()) {
    auto address = std::find_if(attempt.identities.begin(), attempt.identities.end(),
                                [](const IdentityKey& key) { return key.kind == "EMAIL"; });
    if (address != attempt.identities.end()) {
      attempt.person.first_name = address->value;
      attempt.title_parts["name"] = address->value;
    }
  }
  attempt.fallback_title = absl::StrCat("Email from ", from);
  const std::string subject = need.empty() ? "Reply to the email" : "Reply: " + need;
  attempt.activity = {.type = "EMAIL",
                      .subject = subject,
                      .repeat_subject = subject,
                      .description = email.text_body(),
                      .completed = false,
                      .has_deadline = true};
  attempt.source_id = "EMAIL";
  auto put = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) {
      attempt.source_details[key] = value;
    }
  };
  put("reference", email.to_addresses().empty() ? "" : email.to_addresses(0));
  put("subject", email.subject());
  put("message_id", email.message_id());
  put("in_reply_to", email.in_reply_to());
  put("mailbox", email.mailbox());
  if (relay.size() <= domain::kMaxAddressBytes) put("relay", relay);
  // The Reply-To finds the sender's record as the From does (a form relay writes from a robot
  // address with the person in Reply-To), but is never added to a record: anyone can write any
  // address there.
  // Normalised as email-ingest normalises the From of plain addresses (trimmed, lower case).
  if (std::string reply_to = domain::NormalizeRouteAddress(email.reply_to_address());
      !reply_to.empty() && reply_to != relay) {
    IdentityKey key{"EMAIL", reply_to};
    if (std::find(attempt.identities.begin(), attempt.identities.end(), key) ==
        attempt.identities.end()) {
      attempt.match_only.push_back(std::move(key));
    }
  }
}

std::string RelayAddress(const events::v1::EmailMessage& email) {
  return domain::AsciiLower(domain::TrimAscii(email.relay_address()));
}

}  // namespace leadflow::crm
