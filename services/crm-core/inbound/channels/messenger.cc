// A messenger message: a lead with an open "reply" task for the conversation.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm-core/inbound/channels/channels.h"

namespace leadflow::crm {

void FromMessenger(const events::v1::InboundEvent& event, ContactAttempt& attempt) {
  const events::v1::MessengerMessage& message = event.messenger();
  std::string platform = message.platform().empty() ? "Messenger" : message.platform();
  platform[0] = absl::ascii_toupper(static_cast<unsigned char>(platform[0]));
  const std::string who = !message.sender_display_name().empty() ? message.sender_display_name()
                          : !PersonName(event).empty()           ? PersonName(event)
                                                                 : event.identities(0).value();
  // The profile's display name, when the envelope names nobody: the whole name in the first-name
  // field, as a form's single "name" (a contact made from it is split by naming's ContactName,
  // family name first for a Chinese, Japanese or Korean name). Not in the title's {name}: the
  // title stays "<Platform>: <sender>".
  if (PersonName(event).empty() && !message.sender_display_name().empty()) {
    attempt.person.first_name = message.sender_display_name();
  }
  const std::string need = Need(message.text());
  attempt.comments = message.text();
  attempt.title_parts["need"] = need;
  attempt.fallback_title = absl::StrCat(platform, ": ", who);
  attempt.activity = {.type = "TASK",
                      .subject = absl::StrCat("Reply on ", platform),
                      .repeat_subject = absl::StrCat("Reply on ", platform),
                      .description = message.text(),
                      .completed = false,
                      .has_deadline = true};
  attempt.source_id = "MESSENGER";
  auto put = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) {
      attempt.source_details[key] = value;
    }
  };
  put("reference", message.conversation_id());
  put("platform", message.platform());
  put("message_id", message.message_id());
}

}  // namespace leadflow::crm
