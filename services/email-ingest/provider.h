#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "email-ingest/mime.h"

namespace leadflow::email {

/// A message a provider took apart (Mailgun's parsed fields, Postmark's JSON, SendGrid's parsed
/// fields): its header lines as the provider passes them on, and whatever it gives separately.
struct ProviderMessage {
  /// A header block as received ("Name: value" lines; SendGrid's `headers`).
  std::string header_block;
  /// Header name/value pairs (Mailgun's `message-headers`, Postmark's `Headers`).
  std::vector<std::pair<std::string, std::string>> headers;
  // Given separately (UTF-8); empty or std::nullopt: taken from the headers.
  std::string from_address;
  std::string from_name;
  std::vector<std::string> to_addresses;
  std::vector<std::string> cc_addresses;
  std::string reply_to_address;
  std::optional<std::string> subject;
  std::string date;
  std::string text;  // UTF-8
  std::string html;  // UTF-8
  std::vector<Attachment> attachments;
};

/// The same reading as ParseMessage gives for raw MIME: the filters' signals, thread headers and
/// Message-ID from the headers (through GMime, RFC 2047 words decoded), the text (HTML made
/// readable, quoted history stripped), attachments as metadata.
ParsedMessage ParseProviderMessage(const ProviderMessage& message, const ParseLimits& limits = {});

}  // namespace leadflow::email
