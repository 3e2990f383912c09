#include "crm-core/inbound/channels/channels.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/common/neutral_text.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/domain/lead/title.h"
#include "identity/identity.h"
#include "identity/person_name.h"

namespace leadflow::crm {

using events::v1::Identity;
using events::v1::InboundEvent;

std::string IdentityKindName(Identity::Kind kind) {
  switch (kind) {
    case Identity::PHONE:
      return "PHONE";
    case Identity::EMAIL:
      return "EMAIL";
    case Identity::MESSENGER:
      return "MESSENGER";
    case Identity::KIND_UNSPECIFIED:
    case events::v1::Identity_Kind_Identity_Kind_INT_MIN_SENTINEL_DO_NOT_USE_:
    case events::v1::Identity_Kind_Identity_Kind_INT_MAX_SENTINEL_DO_NOT_USE_:
      return "";
  }
  return "";
}

std::string ValidateEvent(const InboundEvent& event) {
  if (event.event_id().empty()) {
    return "event has no event_id";
  }
  if (event.event_id().size() > 200) {
    return "event_id is longer than 200 bytes";
  }
  for (char c : event.event_id()) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return "event_id contains a control character";
    }
  }
  // A call from a withheld number (or a SIP user) has no identity by design: it goes to the
  // unidentified calls. Anything else without one cannot be anybody's.
  if (event.identities().empty() && !event.has_call()) {
    return "event has no identity of its sender";
  }
  for (const Identity& identity : event.identities()) {
    if (IdentityKindName(identity.kind()).empty()) {
      return "identity of unknown kind";
    }
    if (identity.value().empty() || identity.value().size() > domain::kMaxIdentityBytes) {
      return "identity value is empty or too long";
    }
  }
  // The relay sender is never the person (FromEmail drops it from the identities): a message
  // naming nobody else cannot be anybody's.
  if (event.has_email() && !RelayAddress(event.email()).empty()) {
    const std::string relay = RelayAddress(event.email());
    const bool someone_else =
        std::any_of(event.identities().begin(), event.identities().end(), [&](const Identity& i) {
          return i.kind() != Identity::EMAIL ||
                 domain::AsciiLower(domain::TrimAscii(i.value())) != relay;
        });
    if (!someone_else) {
      return "the email's only identity is its relay sender (relay_address)";
    }
  }
  switch (event.payload_case()) {
    case InboundEvent::kWebForm:
    case InboundEvent::kEmail:
    case InboundEvent::kCall:
    case InboundEvent::kMessenger:
      return "";
    case InboundEvent::PAYLOAD_NOT_SET:
      break;
  }
  return "payload not handled by this crm-core version";
}

std::string PersonName(const InboundEvent& event) {
  return identity::FullName(event.person().first_name(), event.person().last_name());
}

std::string Need(const std::string& text) {
  constexpr size_t kNeedChars = 60;
  return Summarize(text, kNeedChars);
}

namespace {

// Set but with nothing a reader sees (a combining accent alone, a Hangul filler, a zero-width
// space: identity::HasVisibleCharacter).
bool Unseen(const std::string& name) {
  return !name.empty() && !identity::HasVisibleCharacter(name);
}

// Every text the rules copy into a record (names, title parts, comments, the activity's words,
// source details) as the API would accept it (domain::NeutralizeText; docs/domain.md, "Text from
// inbound events"): the event is applied, never refused for it, and the record it writes can be
// saved back unchanged.
void NeutralizeAttemptText(ContactAttempt& attempt) {
  // Names within the API's bound for names (domain::kMaxNameBytes): they become a lead's, a
  // contact's or a company's, and a conversion carries them on.
  for (std::string* name : {&attempt.person.first_name, &attempt.person.last_name,
                            &attempt.person.company, &attempt.person.city, &attempt.unnamed_as}) {
    *name = domain::NeutralizeText(*name, /*multi_line=*/false, domain::kMaxNameBytes);
  }
  for (std::string* text :
       {&attempt.fallback_title, &attempt.activity.subject, &attempt.activity.repeat_subject}) {
    *text = domain::NeutralizeText(*text);
  }
  attempt.comments = domain::NeutralizeText(attempt.comments, /*multi_line=*/true);
  attempt.activity.description =
      domain::NeutralizeText(attempt.activity.description, /*multi_line=*/true);
  for (auto& [name, value] : attempt.title_parts) {
    value = domain::NeutralizeText(value);
  }
  for (auto& [name, value] : attempt.source_details) {
    value = domain::NeutralizeText(value);
  }
}

}  // namespace

ContactAttempt ToContactAttempt(const InboundEvent& event) {
  // A name nobody can see is no name: the person is treated as nameless (known by how they
  // reached us), never refused — the event was accepted and what it says must not be lost.
  // The API refuses the same names (CheckText) because its caller can correct them.
  const bool messenger_unseen =
      event.has_messenger() && Unseen(event.messenger().sender_display_name());
  if (Unseen(event.person().first_name()) || Unseen(event.person().last_name()) ||
      Unseen(event.person().company()) || messenger_unseen) {
    InboundEvent named = event;
    for (std::string* name :
         {named.mutable_person()->mutable_first_name(), named.mutable_person()->mutable_last_name(),
          named.mutable_person()->mutable_company()}) {
      if (Unseen(*name)) {
        name->clear();
      }
    }
    if (messenger_unseen) {
      named.mutable_messenger()->clear_sender_display_name();
    }
    return ToContactAttempt(named);
  }
  ContactAttempt attempt;
  attempt.event_id = event.event_id();
  attempt.person = {.first_name = event.person().first_name(),
                    .last_name = event.person().last_name(),
                    .company = event.person().company(),
                    .city = event.person().city()};
  for (const Identity& identity : event.identities()) {
    attempt.identities.push_back({IdentityKindName(identity.kind()), identity.value()});
  }
  attempt.title_parts = {{"city", event.person().city()},
                         {"name", PersonName(event)},
                         {"company", event.person().company()}};
  switch (event.payload_case()) {
    case InboundEvent::kWebForm:
      FromWebForm(event, attempt);
      break;
    case InboundEvent::kEmail:
      FromEmail(event, attempt);
      break;
    case InboundEvent::kCall:
      FromCall(event, attempt);
      break;
    case InboundEvent::kMessenger:
      FromMessenger(event, attempt);
      break;
    case InboundEvent::PAYLOAD_NOT_SET:
      break;  // refused by ValidateEvent
  }
  // Nameless: known by the first way they reached us that the channel kept (an email's relay
  // sender is dropped by then), a phone number as people write it.
  const bool named = domain::TrimAscii(PersonName(event)).size() > 0 ||
                     (event.has_messenger() &&
                      !domain::TrimAscii(event.messenger().sender_display_name()).empty());
  if (!named && !attempt.identities.empty()) {
    const IdentityKey& reach = attempt.identities.front();
    attempt.unnamed_as =
        reach.kind == "PHONE" ? identity::FormatPhoneForReading(reach.value) : reach.value;
  }
  NeutralizeAttemptText(attempt);
  return attempt;
}

}  // namespace leadflow::crm
