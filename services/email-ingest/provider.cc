#include "email-ingest/provider.h"

#include <algorithm>
#include <cctype>

namespace leadflow::email {
namespace {

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

/// Headers that describe the original body, which the provider replaced by its own fields.
bool DescribesBody(std::string_view name) {
  std::string lower = Lower(std::string(name));
  return lower.rfind("content-", 0) == 0 || lower == "mime-version";
}

/// One header line, folded lines joined; no CR or LF can start another header.
void AppendHeader(std::string* block, std::string_view name, std::string_view value) {
  if (name.empty() || name.find_first_of(":\r\n ") != std::string_view::npos) return;
  if (DescribesBody(name)) return;
  block->append(name);
  block->append(": ");
  for (char c : value) {
    block->push_back(c == '\r' || c == '\n' ? ' ' : c);
  }
  block->append("\r\n");
}

}  // namespace

ParsedMessage ParseProviderMessage(const ProviderMessage& message, const ParseLimits& limits) {
  std::string raw;
  // The header block as given, without the lines that describe the original body.
  std::string_view block = message.header_block;
  bool skipping = false;
  while (!block.empty()) {
    size_t end = block.find('\n');
    std::string_view line = block.substr(0, end);
    block = end == std::string_view::npos ? std::string_view() : block.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the headers
    bool continuation = line.front() == ' ' || line.front() == '\t';
    if (!continuation) {
      size_t colon = line.find(':');
      skipping = colon == std::string_view::npos || DescribesBody(line.substr(0, colon));
    }
    if (!skipping) {
      raw.append(line);
      raw.append("\r\n");
    }
  }
  for (const auto& [name, value] : message.headers) AppendHeader(&raw, name, value);
  raw.append("Content-Type: text/plain; charset=utf-8\r\n\r\n");
  ParsedMessage parsed = ParseMessage(raw, limits);

  if (!message.from_address.empty()) {
    parsed.from_address = Lower(message.from_address);
    parsed.from_name = message.from_name;
  }
  // The provider's own lists, under the same cap as a header's (ParseLimits::max_addresses).
  auto take = [&limits](const std::vector<std::string>& given, std::vector<std::string>* kept,
                        uint32_t* omitted) {
    kept->clear();
    *omitted = 0;
    for (const std::string& address : given) {
      if (kept->size() < limits.max_addresses) {
        kept->push_back(Lower(address));
      } else {
        ++*omitted;
      }
    }
  };
  if (!message.to_addresses.empty()) {
    take(message.to_addresses, &parsed.to_addresses, &parsed.to_addresses_omitted);
  }
  if (!message.cc_addresses.empty()) {
    take(message.cc_addresses, &parsed.cc_addresses, &parsed.cc_addresses_omitted);
  }
  if (!message.reply_to_address.empty()) parsed.reply_to_address = Lower(message.reply_to_address);
  if (message.subject) {
    parsed.subject = TruncateUtf8(*message.subject, kMaxSubjectBytes);
    if (message.subject->size() > kMaxSubjectBytes &&
        std::find(parsed.truncated_headers.begin(), parsed.truncated_headers.end(), "Subject") ==
            parsed.truncated_headers.end() &&
        parsed.truncated_headers.size() < kMaxTruncatedHeaderNames) {
      parsed.truncated_headers.push_back("Subject");
    }
  }
  if (!message.date.empty()) {
    if (auto date = ParseDate(message.date)) parsed.date = date;
  }
  std::string text;
  parsed.text_from_html = false;
  if (message.text.find_first_not_of(" \t\r\n") != std::string::npos) {
    text = CharsetToUtf8(message.text, "utf-8");
  } else if (!message.html.empty()) {
    text = HtmlToText(CharsetToUtf8(message.html, "utf-8"));
    parsed.text_from_html = true;
  }
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  parsed.quoted_history_stripped = false;
  parsed.text = IsForwardSubject(parsed.subject)
                    ? TruncateUtf8(text, limits.max_text_bytes)
                    : TruncateUtf8(StripQuotedHistory(text, &parsed.quoted_history_stripped),
                                   limits.max_text_bytes);
  parsed.attachments = message.attachments;
  if (parsed.attachments.size() > limits.max_attachments) {
    parsed.attachments.resize(limits.max_attachments);
  }
  return parsed;
}

}  // namespace leadflow::email
