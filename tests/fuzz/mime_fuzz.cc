// Fuzz target: email-ingest's MIME front end (GMime, the HTML reader, the quoted-history cut,
// the format=flowed decoder), the never-a-lead filters, the event id and the event, and the
// webhook form reader.

#include <cstddef>
#include <string>

#include "email-ingest/message.h"
#include "email-ingest/mime.h"
#include "email-ingest/webhook_form.h"
#include "fuzz/fuzz.h"
#include "identity/identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using leadflow::fuzz::Check;
  using leadflow::identity::IsValidUtf8;
  std::string_view raw = leadflow::fuzz::AsText(data, size);
  // Small header caps, so that short inputs reach the cut paths (CutHeaderFields).
  leadflow::email::ParseLimits limits{.max_text_bytes = 2048,
                                      .max_attachments = 8,
                                      .max_header_field_bytes = 256,
                                      .max_address_field_bytes = 512,
                                      .max_addresses = 4};
  leadflow::email::ParsedMessage message = leadflow::email::ParseMessage(raw, limits);
  Check(message.text.size() <= limits.max_text_bytes, "text limit");
  Check(message.attachments.size() <= limits.max_attachments, "attachment limit");
  Check(message.to_addresses.size() <= limits.max_addresses &&
            message.cc_addresses.size() <= limits.max_addresses,
        "address cap");
  Check(message.subject.size() <= leadflow::email::kMaxSubjectBytes, "subject cap");
  Check(message.truncated_headers.size() <= leadflow::email::kMaxTruncatedHeaderNames,
        "cut header names bounded");
  for (const std::string& name : message.truncated_headers) {
    Check(!name.empty() && name.size() <= 64, "cut header names are short");
  }
  for (const std::string* text : {&message.text, &message.subject, &message.from_address,
                                  &message.from_name, &message.message_id, &message.in_reply_to}) {
    Check(IsValidUtf8(*text), "parsed text is UTF-8");
  }
  for (const auto& attachment : message.attachments) {
    Check(IsValidUtf8(attachment.filename), "attachment names are UTF-8");
    Check(attachment.size_bytes >= 0, "sizes are not negative");
  }
  leadflow::email::Envelope envelope{
      .provider = "smtp", .mail_from = "a@example.org", .mailbox = "sales@acme.test"};
  (void)leadflow::email::NeverALead(message, envelope);
  Check(leadflow::email::EmailEventId(message).rfind("email:", 0) == 0, "event id spelling");
  auto built = leadflow::email::BuildEmailEvent(message, envelope);
  if (built.ok()) {
    Check(!built->key.empty(), "a built event has a key");
    Check(built->event.email().text_body() == message.text, "the text is the parsed text");
  }
  bool stripped = false;
  std::string cut = leadflow::email::StripQuotedHistory(message.text, &stripped);
  Check(cut.size() <= message.text.size(), "stripping never adds text");
  // The format=flowed decoder and the space reader on the raw bytes, and on text as they get it.
  for (bool delsp : {false, true}) {
    std::string flowed = leadflow::email::DecodeFlowed(raw, delsp);
    std::string again = leadflow::email::DecodeFlowed(message.text, delsp);
    Check(IsValidUtf8(again), "flowed text of UTF-8 is UTF-8");
    (void)flowed;
  }
  std::string spaces = leadflow::email::AsciiSpaces(raw);
  Check(spaces.size() <= raw.size(), "spaces never lengthen");
  Check(IsValidUtf8(leadflow::email::AsciiSpaces(message.text)), "spaces keep UTF-8");
  (void)leadflow::email::ParseForm("multipart/form-data; boundary=b", raw, 50);
  (void)leadflow::email::ParseForm("application/x-www-form-urlencoded", raw, 50);
  return 0;
}
