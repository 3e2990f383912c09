#include "email-ingest/message.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "identity/person_name.h"
#include "ingest/event_id.h"

namespace leadflow::email {
namespace {

std::string LocalPart(std::string_view address) {
  size_t at = address.rfind('@');
  return absl::AsciiStrToLower(
      std::string(at == std::string_view::npos ? address : address.substr(0, at)));
}

bool IsDaemon(std::string_view address) {
  std::string local = LocalPart(address);
  return local == "mailer-daemon" || local == "postmaster" || local == "mail-daemon";
}

/// The first token of a header value ("auto-replied; owner=…" → "auto-replied"), lower-case.
std::string FirstToken(std::string_view value) {
  std::string token(value.substr(0, value.find_first_of(";( \t")));
  return absl::AsciiStrToLower(token);
}

}  // namespace

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kAutoSubmitted:
      return "auto_submitted";
    case DropReason::kAutoReplyHeader:
      return "autoreply_header";
    case DropReason::kBulkPrecedence:
      return "bulk_precedence";
    case DropReason::kMailingList:
      return "mailing_list";
    case DropReason::kDeliveryReport:
      return "delivery_report";
    case DropReason::kDaemonSender:
      return "daemon_sender";
    case DropReason::kEmptyReturnPath:
      return "empty_return_path";
    case DropReason::kLoop:
      return "loop";
    case DropReason::kNoSender:
      return "no_sender";
    case DropReason::kAutoReplySubject:
      return "autoreply_subject";
    case DropReason::kOwnAddress:
      return "own_address";
    case DropReason::kCalendarReply:
      return "calendar_reply";
  }
  return "unknown";
}

std::vector<std::string> DefaultAutoReplySubjects() {
  return {"Out of Office",
          "Out of the office",
          "Automatic reply",
          "Auto reply",
          "Auto-reply",
          "Autoreply",
          "Auto response",
          "Réponse automatique",
          "Absence du bureau",
          "Message d'absence",
          "Abwesenheitsnotiz",
          "Automatische Antwort",
          "Autosvar",
          "Automatisk svar",
          "Risposta automatica",
          "Respuesta automática",
          "Resposta automática",
          "Automatisch antwoord",
          "Afwezigheidsbericht",
          "Odpowiedź automatyczna",
          "Automaattinen vastaus"};
}

bool IsNoReplyAddress(std::string_view address) {
  std::string local = LocalPart(address);
  std::string squeezed;
  for (char c : local) {
    if (c != '-' && c != '_' && c != '.') squeezed.push_back(c);
  }
  return squeezed.find("noreply") != std::string::npos ||
         squeezed.find("donotreply") != std::string::npos ||
         squeezed.find("dontreply") != std::string::npos;
}

Sender PersonOf(const ParsedMessage& message, const Envelope& envelope, const MessageRules& rules) {
  Sender sender{.address = SenderAddress(message, envelope), .name = message.from_name};
  if (message.reply_to_address.empty() || message.reply_to_address == sender.address) {
    return sender;
  }
  // Only a sender the operator configured: anyone can send from a no-reply address of their own
  // domain with a customer's address in Reply-To, and would file their text on that customer.
  if (rules.relay_senders.Accepts(sender.address)) {
    return {.address = message.reply_to_address,
            .name = message.reply_to_name,
            .relay = sender.address};
  }
  return sender;
}

std::optional<DropReason> NeverALead(const ParsedMessage& message, const Envelope& envelope,
                                     const MessageRules& rules) {
  if (message.has_loop_header) return DropReason::kLoop;
  if (!message.auto_submitted.empty() && FirstToken(message.auto_submitted) != "no") {
    return DropReason::kAutoSubmitted;
  }
  if (message.has_autoreply_header || message.has_exchange_autoreply_header) {
    return DropReason::kAutoReplyHeader;
  }
  std::string subject =
      absl::AsciiStrToLower(absl::StripLeadingAsciiWhitespace(message.subject.substr(0, 200)));
  for (const std::string& prefix : rules.autoreply_subjects) {
    if (!prefix.empty() && absl::StartsWith(subject, absl::AsciiStrToLower(prefix))) {
      return DropReason::kAutoReplySubject;
    }
  }
  std::string precedence = FirstToken(message.precedence);
  if (precedence == "auto_reply") return DropReason::kAutoReplyHeader;
  if (precedence == "bulk" || precedence == "junk" || precedence == "list") {
    return DropReason::kBulkPrecedence;
  }
  if (message.has_list_header) return DropReason::kMailingList;
  if (message.is_report) return DropReason::kDeliveryReport;
  // Accepting, declining or proposing another time answers our invitation automatically (the
  // mail program writes it when the button is pressed): no text, nothing to reply to.
  if (message.calendar_method == "REPLY") return DropReason::kCalendarReply;
  if (IsDaemon(message.from_address) ||
      (envelope.mail_from.has_value() && IsDaemon(*envelope.mail_from))) {
    return DropReason::kDaemonSender;
  }
  if ((envelope.mail_from.has_value() && envelope.mail_from->empty()) ||
      (message.has_return_path && message.return_path.empty())) {
    return DropReason::kEmptyReturnPath;
  }
  std::string sender = SenderAddress(message, envelope);
  if (sender.empty()) return DropReason::kNoSender;
  // A copy of our own mail (a Bcc to the shared mailbox, a loop that lost its header): the
  // person is whoever we wrote to, not us.
  if (!rules.accept_own_address && rules.own_addresses.Accepts(sender)) {
    return DropReason::kOwnAddress;
  }
  return std::nullopt;
}

std::string SenderAddress(const ParsedMessage& message, const Envelope& envelope) {
  if (!message.from_address.empty()) return message.from_address;
  return envelope.mail_from.value_or("");
}

std::string MessageIdKey(std::string_view message_id, std::string_view from_address) {
  std::string parts = "message-id;";
  ingest::AppendPart(&parts, message_id);
  ingest::AppendPart(&parts,
                     absl::AsciiStrToLower(absl::StripAsciiWhitespace(std::string(from_address))));
  return parts;
}

std::string EmailEventId(const ParsedMessage& message) {
  if (!message.message_id.empty()) {
    // The From header, not the envelope sender: IMAP has no envelope, and a provider's envelope
    // sender (a bounce address) differs from the SMTP one for the same message.
    return ingest::EventId("email", MessageIdKey(message.message_id, message.from_address));
  }
  std::string parts = "no-message-id;";
  ingest::AppendPart(&parts, message.from_address);
  std::vector<std::string> to = message.to_addresses;
  std::sort(to.begin(), to.end());
  for (const std::string& address : to) ingest::AppendPart(&parts, address);
  ingest::AppendPart(&parts, "cc");
  std::vector<std::string> cc = message.cc_addresses;
  std::sort(cc.begin(), cc.end());
  for (const std::string& address : cc) ingest::AppendPart(&parts, address);
  ingest::AppendPart(&parts, message.date
                                 ? std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                      message.date->time_since_epoch())
                                                      .count())
                                 : "");
  ingest::AppendPart(&parts, message.subject);
  ingest::AppendPart(&parts, message.text);
  for (const Attachment& attachment : message.attachments) {
    ingest::AppendPart(&parts, attachment.filename);
    ingest::AppendPart(&parts, std::to_string(attachment.size_bytes));
  }
  return ingest::EventId("email", parts);
}

absl::StatusOr<ingest::EventBuilder::Built> BuildEmailEvent(const ParsedMessage& message,
                                                            const Envelope& envelope,
                                                            const MessageRules& rules) {
  ingest::EventBuilder builder("email-ingest", envelope.provider, "email");
  Sender person = PersonOf(message, envelope, rules);
  const std::string& sender = person.address;
  if (absl::Status status = builder.AddEmail(sender); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sender address: ", status.message()));
  }
  // "Jean Dupont" → Jean / Dupont; "Dupont, Jean" → Jean / Dupont; one word → first name; a name
  // in Han, Kana or Hangul family name first (identity::SplitFamilyNameFirst).
  std::string first;
  std::string last;
  // A display name that is an address ("jean@x.fr" <jean@x.fr>) is no name: crm-core then
  // titles the lead by its subject and shows the address (docs/email-ingest.md).
  std::string name(absl::StripAsciiWhitespace(person.name));
  if (name.size() >= 2 && (name.front() == '\'' || name.front() == '"') &&
      name.back() == name.front()) {
    name = std::string(absl::StripAsciiWhitespace(name.substr(1, name.size() - 2)));
  }
  if (name.find('@') != std::string::npos) name.clear();
  if (size_t comma = name.find(','); comma != std::string::npos) {
    last = std::string(absl::StripAsciiWhitespace(name.substr(0, comma)));
    first = std::string(absl::StripAsciiWhitespace(name.substr(comma + 1)));
  } else if (std::optional<identity::NameParts> parts = identity::SplitFamilyNameFirst(name)) {
    // Chinese, Japanese, Korean: family name first ("山田 太郎" → 太郎 / 山田, "王伟" → 伟 / 王).
    first = std::move(parts->given);
    last = std::move(parts->family);
  } else if (size_t space = name.rfind(' '); space != std::string::npos) {
    first = std::string(absl::StripAsciiWhitespace(name.substr(0, space)));
    last = std::string(absl::StripAsciiWhitespace(name.substr(space + 1)));
  } else {
    first = name;
  }
  builder.Person(first, last, "", "");
  // Our address it came in through: the envelope recipient, else the first of ours in To/Cc.
  std::string mailbox = envelope.mailbox;
  if (mailbox.empty()) {
    for (const auto* list : {&message.to_addresses, &message.cc_addresses}) {
      for (const std::string& address : *list) {
        if (mailbox.empty() && rules.own_addresses.Accepts(address)) mailbox = address;
      }
    }
  }
  builder.Reference(mailbox);
  builder.Client(envelope.client_ip, "");
  // The Date header when it is believable (not in the future beyond clock skew).
  auto occurred = envelope.received;
  if (message.date && *message.date <= envelope.received + std::chrono::hours(1)) {
    occurred = *message.date;
  }
  builder.Times(occurred, envelope.received);
  builder.EventId(EmailEventId(message));

  events::v1::EmailMessage* email = builder.event().mutable_email();
  email->set_message_id(message.message_id);
  email->set_from_address(sender);
  email->set_from_name(name);
  email->set_relay_address(person.relay);
  for (const std::string& to : message.to_addresses) email->add_to_addresses(to);
  // A message that names none of its recipients (Bcc, a provider that left To out) was still
  // sent to our mailbox: the envelope recipient stands for its To (crm-core's source reference).
  if (message.to_addresses.empty() && !mailbox.empty()) email->add_to_addresses(mailbox);
  for (const std::string& cc : message.cc_addresses) email->add_cc_addresses(cc);
  email->set_to_addresses_omitted(message.to_addresses_omitted);
  email->set_cc_addresses_omitted(message.cc_addresses_omitted);
  for (const std::string& name : message.truncated_headers) email->add_truncated_headers(name);
  email->set_subject(message.subject);
  email->set_text_body(message.text);
  email->set_in_reply_to(message.in_reply_to);
  for (const std::string& reference : message.references) email->add_references(reference);
  email->set_reply_to_address(message.reply_to_address);
  if (message.date) *email->mutable_date() = ingest::ToTimestamp(*message.date);
  email->set_mailbox(mailbox);
  for (const Attachment& attachment : message.attachments) {
    events::v1::EmailAttachment* out = email->add_attachments();
    out->set_filename(attachment.filename);
    out->set_content_type(attachment.content_type);
    out->set_size_bytes(attachment.size_bytes);
    out->set_inline_part(attachment.inline_part);
  }
  email->set_text_from_html(message.text_from_html);
  email->set_quoted_history_stripped(message.quoted_history_stripped);
  email->set_provider(envelope.provider);
  auto built = std::move(builder).Finish();
  if (built.ok()) {
    if (std::string key = ThreadPartitionKey(message); !key.empty()) built->key = std::move(key);
  }
  return built;
}

std::string ThreadPartitionKey(const ParsedMessage& message) {
  // Only ids crm-core can use (printable ASCII, at most 998 bytes, as its IsUsableMessageId).
  auto usable = [](std::string_view id) {
    return !id.empty() && id.size() <= 998 &&
           std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  };
  for (const std::string& reference : message.references) {
    if (usable(reference)) {
      return "email-thread:" + reference;
    }
  }
  for (std::string_view id :
       {std::string_view(message.in_reply_to), std::string_view(message.message_id)}) {
    if (usable(id)) {
      return "email-thread:" + std::string(id);
    }
  }
  return "";
}

}  // namespace leadflow::email
