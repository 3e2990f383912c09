#include "email-ingest/mime.h"

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <regex>

#include "email-ingest/calendar.h"

namespace leadflow::email {
namespace {

/// A time point of Unix seconds; std::nullopt outside years 1970..2255 (a Date header may say
/// anything, and system_clock's nanoseconds overflow past ±292 years).
std::optional<std::chrono::system_clock::time_point> FromUnix(int64_t seconds) {
  if (seconds < 0 || seconds > 9000000000) return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

void InitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_mime_init();
    xmlInitParser();
  });
}

std::string Trim(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

/// Valid UTF-8 of `bytes` read in `charset` (declared by the part; may be empty or wrong).
/// ISO-8859-1 and US-ASCII are read as windows-1252, their common superset (as browsers do),
/// so that the curly quotes and € senders' mail programs put in come out right.
std::string ToUtf8(std::string_view bytes, std::string charset) {
  InitOnce();
  charset = Lower(Trim(charset));
  if (charset == "iso-8859-1" || charset == "latin1" || charset == "iso_8859-1" ||
      charset == "us-ascii" || charset == "ascii") {
    charset = "windows-1252";
  }
  bool valid_utf8 = g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr);
  if (charset.empty() || charset == "utf-8" || charset == "utf8") {
    if (valid_utf8) return std::string(bytes);
    charset = "windows-1252";  // 8-bit text without (or with a false) declaration
  }
  const char* iconv_name = g_mime_charset_iconv_name(charset.c_str());
  gsize written = 0;
  gchar* converted =
      g_convert(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8",
                iconv_name ? iconv_name : charset.c_str(), nullptr, &written, nullptr);
  if (converted == nullptr && charset != "windows-1252") {
    converted = g_convert(bytes.data(), static_cast<gssize>(bytes.size()), "UTF-8",
                          valid_utf8 ? "UTF-8" : "WINDOWS-1252", nullptr, &written, nullptr);
  }
  if (converted != nullptr) {
    std::string result(converted, written);
    g_free(converted);
    if (g_utf8_validate(result.data(), static_cast<gssize>(result.size()), nullptr)) {
      return result;
    }
  }
  gchar* valid = g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size()));
  std::string result(valid);
  g_free(valid);
  return result;
}

std::string ToUtf8(const char* text) {
  if (text == nullptr) return "";
  return ToUtf8(std::string_view(text), "utf-8");
}

/// The decoded (transfer encoding undone) content of a leaf part, at most `max_bytes`.
std::string DecodedContent(GMimePart* part, size_t max_bytes) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) return "";
  GByteArray* array = g_byte_array_new();
  GMimeStream* stream = g_mime_stream_mem_new_with_byte_array(array);  // owns `array`
  g_mime_data_wrapper_write_to_stream(content, stream);
  size_t size = std::min<size_t>(array->len, max_bytes);
  std::string bytes(reinterpret_cast<const char*>(array->data), size);
  g_object_unref(stream);
  return bytes;
}

int64_t DecodedSize(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (content == nullptr) return 0;
  GMimeStream* null_stream = g_mime_stream_null_new();
  g_mime_data_wrapper_write_to_stream(content, null_stream);
  auto size = static_cast<int64_t>(GMIME_STREAM_NULL(null_stream)->written);
  g_object_unref(null_stream);
  return size;
}

std::string MimeType(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (type == nullptr) return "application/octet-stream";
  char* mime_type = g_mime_content_type_get_mime_type(type);
  std::string result = mime_type ? Lower(mime_type) : "application/octet-stream";
  g_free(mime_type);
  return result;
}

/// Adds the list's addresses (lower case; group members too) to `out` up to `max` in all; the
/// number of addresses left out past it is returned.
uint32_t AddAddresses(InternetAddressList* list, std::vector<std::string>* out, size_t max,
                      int depth = 0) {
  if (list == nullptr || depth > 2) return 0;
  uint32_t omitted = 0;
  int count = internet_address_list_length(list);
  for (int i = 0; i < count; ++i) {
    InternetAddress* address = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(address)) {
      const char* raw = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address));
      if (raw == nullptr || *raw == '\0') continue;
      if (out->size() >= max) {
        ++omitted;
        continue;
      }
      std::string addr = Trim(ToUtf8(raw));
      if (!addr.empty()) out->push_back(Lower(addr));
    } else if (INTERNET_ADDRESS_IS_GROUP(address)) {
      omitted += AddAddresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address)),
                              out, max, depth + 1);
    }
  }
  return omitted;
}

/// Adds `name` to the cut header names: once (case ignored), at most kMaxTruncatedHeaderNames,
/// printable and at most 64 bytes (a name is whatever the sender wrote before the colon).
void NoteTruncatedHeader(std::vector<std::string>* names, std::string_view name) {
  std::string clean;
  for (char c : name.substr(0, 64)) {
    clean.push_back(static_cast<unsigned char>(c) < 0x21 || c == 0x7f ? '?' : c);
  }
  if (clean.empty()) clean = "?";
  for (const std::string& known : *names) {
    if (Lower(known) == Lower(clean)) return;
  }
  if (names->size() < kMaxTruncatedHeaderNames) names->push_back(std::move(clean));
}

/// The header fields GMime reads as address lists (an object per address).
bool IsAddressField(std::string_view name) {
  static const char* const kNames[] = {
      "from",        "sender",        "reply-to",        "to",        "cc",        "bcc",
      "resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc"};
  std::string lower = Lower(Trim(name));
  return std::find(std::begin(kNames), std::end(kNames), lower) != std::end(kNames);
}

/// The mailboxes in address-list text: pieces between commas (outside quoted strings, comments
/// and angle brackets) that hold an '@'. Used for the part of a To or Cc that was cut off.
uint32_t CountAddresses(std::string_view text) {
  uint32_t count = 0;
  bool quoted = false;
  bool escaped = false;
  bool angle = false;
  bool has_at = false;
  int comment = 0;
  for (char c : text) {
    if (escaped) {
      escaped = false;
      continue;
    }
    if (c == '\\') {
      escaped = true;
      continue;
    }
    if (quoted) {
      quoted = c != '"';
      continue;
    }
    if (comment > 0) {
      if (c == '(') ++comment;
      if (c == ')') --comment;
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == '(') {
      comment = 1;
    } else if (c == '<') {
      angle = true;
    } else if (c == '>') {
      angle = false;
    } else if (c == '@') {
      has_at = true;
    } else if ((c == ',' || c == ';') && !angle) {
      if (has_at) ++count;
      has_at = false;
    }
  }
  return has_at ? count + 1 : count;
}

/// What CutHeaderFields left out.
struct HeaderCuts {
  std::vector<std::string> names;
  uint32_t to_omitted = 0;
  uint32_t cc_omitted = 0;
};

/// One header field of the raw message: [begin, end) without its final line end, `next` where
/// the following field (or the blank line ending the headers) starts.
struct RawField {
  size_t begin = 0;
  size_t end = 0;
  size_t next = 0;
};

/// The header fields of `raw`, in order, up to the blank line that ends them.
template <typename Visit>
void ForEachHeaderField(std::string_view raw, Visit visit) {
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw[pos] == '\n' || (raw[pos] == '\r' && pos + 1 < raw.size() && raw[pos + 1] == '\n')) {
      return;  // the blank line: the body follows
    }
    RawField field{.begin = pos};
    size_t line_end = pos;
    while (true) {
      size_t newline = raw.find('\n', line_end);
      if (newline == std::string_view::npos) {
        field.end = field.next = raw.size();
        break;
      }
      field.end = newline > field.begin && raw[newline - 1] == '\r' ? newline - 1 : newline;
      field.next = newline + 1;
      if (field.next < raw.size() && (raw[field.next] == ' ' || raw[field.next] == '\t')) {
        line_end = field.next;  // a folded continuation
        continue;
      }
      break;
    }
    visit(field);
    pos = field.next;
  }
}

/// `raw` with its over-long header fields cut (ParseLimits: max_header_field_bytes each, the
/// address fields within max_address_field_bytes together), the cuts noted in `cuts`; nullptr
/// when nothing needs cutting (the common case: no copy is made). The copy is a GByteArray that
/// GMime's memory stream takes over, so that a cut message is held once, as an uncut one is.
GByteArray* CutHeaderFields(std::string_view raw, const ParseLimits& limits, HeaderCuts* cuts) {
  auto name_of = [raw](const RawField& field) {
    std::string_view text = raw.substr(field.begin, field.end - field.begin);
    size_t colon = text.find(':');
    return colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
  };
  bool needed = false;
  size_t address_bytes = 0;
  ForEachHeaderField(raw, [&](const RawField& field) {
    size_t size = field.end - field.begin;
    if (size > limits.max_header_field_bytes) needed = true;
    if (IsAddressField(name_of(field))) address_bytes += size;
  });
  if (!needed && address_bytes <= limits.max_address_field_bytes) return nullptr;

  GByteArray* out = g_byte_array_sized_new(static_cast<guint>(raw.size() + 1024));
  auto append = [out](std::string_view bytes) {
    g_byte_array_append(out, reinterpret_cast<const guint8*>(bytes.data()),
                        static_cast<guint>(bytes.size()));
  };
  size_t address_left = limits.max_address_field_bytes;
  size_t body = 0;
  ForEachHeaderField(raw, [&](const RawField& field) {
    body = field.next;
    std::string_view text = raw.substr(field.begin, field.end - field.begin);
    std::string_view name = name_of(field);
    const bool address = IsAddressField(name);
    size_t cap = limits.max_header_field_bytes;
    if (address) cap = std::min(cap, address_left);
    if (text.size() <= cap) {
      append(raw.substr(field.begin, field.next - field.begin));
      if (address) address_left -= text.size();
      return;
    }
    NoteTruncatedHeader(&cuts->names, name.empty() ? text.substr(0, 64) : name);
    size_t value_start = name.empty() ? 0 : name.size() + 1;
    size_t cut = cap;
    if (cut > value_start) {
      // An address list after its last whole address; anything else at its last space.
      size_t at = address ? text.rfind(',', cut) : text.find_last_of(" \t", cut);
      if (at != std::string_view::npos && at > value_start) {
        cut = at;
      } else if (address) {
        cut = value_start;  // no whole address fits: the field is left out, its addresses counted
      } else {
        while (cut > value_start && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      }
    } else {
      cut = 0;  // no room left: the field is left out
    }
    std::string_view kept = text.substr(0, cut);
    while (!kept.empty() && (kept.back() == ' ' || kept.back() == '\t' || kept.back() == '\r' ||
                             kept.back() == '\n' || kept.back() == ',')) {
      kept.remove_suffix(1);
    }
    if (address) {
      std::string lower = Lower(Trim(name));
      uint32_t dropped = CountAddresses(text.substr(std::max(cut, value_start)));
      if (lower == "to") cuts->to_omitted += dropped;
      if (lower == "cc") cuts->cc_omitted += dropped;
      address_left -= std::min(address_left, kept.size());
    }
    if (kept.size() > value_start) {
      append(kept);
      append("\r\n");
    }
  });
  append(raw.substr(std::min(body, raw.size())));
  return out;
}

std::pair<std::string, std::string> FirstMailbox(InternetAddressList* list) {
  if (list == nullptr) return {};
  int count = internet_address_list_length(list);
  for (int i = 0; i < count; ++i) {
    InternetAddress* address = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(address)) {
      const char* name = internet_address_get_name(address);
      return {
          Lower(Trim(ToUtf8(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address))))),
          Trim(ToUtf8(name))};
    }
  }
  return {};
}

/// The Message-IDs of an In-Reply-To or References header, oldest first. Past
/// kMaxReferences, the first (the thread's root) and the newest are kept: the message a reply
/// answers is at the end, and a long chain's middle is what tells least.
std::vector<std::string> ParseReferences(GMimeParserOptions* options, const char* value) {
  std::vector<std::string> ids;
  if (value == nullptr) return ids;
  GMimeReferences* references = g_mime_references_parse(options, value);
  if (references == nullptr) return ids;
  int count = g_mime_references_length(references);
  std::vector<std::string> newest;  // from the end, newest first
  int first = 0;
  for (; first < count && ids.empty(); ++first) {
    const char* id = g_mime_references_get_message_id(references, first);
    if (id != nullptr && *id != '\0') ids.push_back(ToUtf8(id));
  }
  for (int i = count - 1; i >= first && ids.size() + newest.size() < kMaxReferences; --i) {
    const char* id = g_mime_references_get_message_id(references, i);
    if (id != nullptr && *id != '\0') newest.push_back(ToUtf8(id));
  }
  ids.insert(ids.end(), newest.rbegin(), newest.rend());
  g_mime_references_free(references);
  return ids;
}

/// An RFC 2047 header value with each B (base64) encoded word rewritten as the Q word of the
/// same bytes and charset. GMime 3.2.13 (Debian 12) decodes adjacent B words of one charset as a
/// single base64 stream, so that a word ending in padding ("=?utf-8?b?RGVtYW5kZSBkZSA=?=
/// =?utf-8?b?ZGV2aXM=?=") loses what follows it (GMime issue #133, fixed after 3.2.13); Q words
/// are joined byte-wise, which also keeps a character split across two words whole.
std::string Base64WordsAsQ(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  size_t pos = 0;
  while (pos < value.size()) {
    size_t start = value.find("=?", pos);
    if (start == std::string_view::npos) break;
    // =?charset?B?payload?=
    size_t charset_end = value.find('?', start + 2);
    bool b_word = charset_end != std::string_view::npos && charset_end + 2 < value.size() &&
                  (value[charset_end + 1] == 'B' || value[charset_end + 1] == 'b') &&
                  value[charset_end + 2] == '?';
    size_t end = b_word ? value.find("?=", charset_end + 3) : std::string_view::npos;
    std::string_view charset =
        b_word ? value.substr(start + 2, charset_end - start - 2) : std::string_view();
    if (end == std::string_view::npos || charset.empty() ||
        charset.find_first_of(" \t\r\n") != std::string_view::npos) {
      out.append(value.substr(pos, start + 2 - pos));
      pos = start + 2;
      continue;
    }
    std::string payload;
    for (char c : value.substr(charset_end + 3, end - charset_end - 3)) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') payload.push_back(c);
    }
    if (payload.size() % 4 == 1) payload.pop_back();  // a lone sextet carries no byte
    while (payload.size() % 4 != 0) payload.push_back('=');
    gsize length = 0;
    guchar* bytes = g_base64_decode(payload.c_str(), &length);
    out.append(value.substr(pos, start - pos));
    out.append("=?");
    out.append(charset);
    out.append("?Q?");
    static const char kHex[] = "0123456789ABCDEF";
    for (gsize i = 0; i < length; ++i) {
      unsigned char c = bytes[i];
      if (std::isalnum(c)) {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back('=');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
      }
    }
    out.append("?=");
    g_free(bytes);
    pos = end + 2;
  }
  out.append(value.substr(std::min(pos, value.size())));
  return out;
}

/// A header's raw value (folding removed) with B words made Q words, or std::nullopt without
/// the header.
std::optional<std::string> RawHeader(GMimeObject* object, const char* name) {
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  GMimeHeader* header = list ? g_mime_header_list_get_header(list, name) : nullptr;
  const char* raw = header ? g_mime_header_get_raw_value(header) : nullptr;
  if (raw == nullptr) return std::nullopt;
  std::string unfolded;
  for (const char* c = raw; *c; ++c) {
    if (*c != '\r' && *c != '\n') unfolded.push_back(*c);
  }
  return Base64WordsAsQ(unfolded);
}

/// The decoded Subject (UTF-8, trimmed), "" without one.
std::string DecodedSubject(GMimeObject* object, GMimeParserOptions* options) {
  std::optional<std::string> raw = RawHeader(object, "Subject");
  if (!raw) return "";
  char* decoded = g_mime_utils_header_decode_text(options, raw->c_str());
  std::string subject = decoded ? Trim(ToUtf8(decoded)) : "";
  g_free(decoded);
  return subject;
}

/// The first mailbox of an address header (From, Reply-To): address (lower case) and display
/// name (decoded), empty without one.
std::pair<std::string, std::string> HeaderMailbox(GMimeObject* object, const char* name,
                                                  GMimeParserOptions* options) {
  std::optional<std::string> raw = RawHeader(object, name);
  if (!raw) return {};
  InternetAddressList* list = internet_address_list_parse(options, raw->c_str());
  if (list == nullptr) return {};
  auto mailbox = FirstMailbox(list);
  g_object_unref(list);
  return mailbox;
}

struct Walker {
  const ParseLimits& limits;
  ParsedMessage* out;
  GMimeParserOptions* options;
  /// The forwarded messages' text (message/rfc822 parts), each headed by its From, Date and
  /// Subject, in the order met; together at most forwarded_limit.
  std::vector<std::string> forwarded;
  size_t forwarded_bytes = 0;
  std::string plain;
  std::string html;
  bool have_plain = false;
  bool have_html = false;
  bool have_calendar = false;
  std::string calendar_text;  // the first calendar part's event in words

  void Walk(GMimeObject* object, int depth) {
    if (object == nullptr || depth > limits.max_depth) return;
    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      int count = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < count; ++i) {
        Walk(g_mime_multipart_get_part(multipart, i), depth + 1);
      }
      return;
    }
    if (GMIME_IS_MESSAGE_PART(object)) {
      // A forwarded message ("forward as attachment") or a bounced one: described as an
      // attachment (named by its file name, else its subject), and its text kept after this
      // message's own, headed by who wrote it (a bounce is dropped by the filters anyway).
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      Attachment attachment;
      attachment.content_type = MimeType(object);
      const char* filename = g_mime_object_get_content_disposition_parameter(object, "filename");
      if (filename == nullptr || *filename == '\0') {
        filename = g_mime_object_get_content_type_parameter(object, "name");
      }
      if (filename != nullptr && *filename != '\0') attachment.filename = Trim(ToUtf8(filename));
      if (inner != nullptr) {
        GMimeObject* inner_object = GMIME_OBJECT(inner);
        std::string subject = DecodedSubject(inner_object, options);
        if (attachment.filename.empty()) attachment.filename = subject;
        GMimeStream* null_stream = g_mime_stream_null_new();
        g_mime_object_write_to_stream(inner_object, nullptr, null_stream);
        attachment.size_bytes = static_cast<int64_t>(GMIME_STREAM_NULL(null_stream)->written);
        g_object_unref(null_stream);
        AddAttachment(std::move(attachment));
        ReadForwarded(inner, subject, depth);
        return;
      }
      AddAttachment(std::move(attachment));
      return;
    }
    if (!GMIME_IS_PART(object)) return;
    GMimePart* part = GMIME_PART(object);
    std::string type = MimeType(object);
    const char* filename = g_mime_part_get_filename(part);
    GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(object);
    bool is_attachment = g_mime_part_is_attachment(part) || (filename && *filename);
    if ((type == "text/calendar" || type == "application/ics") && !have_calendar) {
      // An invitation or an answer to one: read for its method and its event (an .ics file
      // attached to a message is read too: it is the same invitation); described as before.
      have_calendar = true;
      const char* method = g_mime_object_get_content_type_parameter(object, "method");
      const char* charset = g_mime_object_get_content_type_parameter(object, "charset");
      if (std::optional<CalendarPart> calendar = ReadCalendar(
              ToUtf8(DecodedContent(part, kMaxCalendarBytes + 1), charset ? charset : ""),
              method ? method : "")) {
        out->calendar_method = calendar->method;
        calendar_text = calendar->text;
      }
    }
    bool is_text = type == "text/plain" || type == "text/html";
    if (is_text && !is_attachment) {
      const char* charset = g_mime_object_get_content_type_parameter(object, "charset");
      // Read a little more than kept: the quoted history is cut after conversion.
      std::string bytes = DecodedContent(part, limits.max_text_bytes * 4);
      if (type == "text/plain" && !have_plain) {
        plain = ToUtf8(bytes, charset ? charset : "");
        const char* format = g_mime_object_get_content_type_parameter(object, "format");
        if (format != nullptr && Lower(Trim(format)) == "flowed") {
          const char* delsp = g_mime_object_get_content_type_parameter(object, "delsp");
          plain = DecodeFlowed(plain, delsp != nullptr && Lower(Trim(delsp)) == "yes");
        }
        have_plain = true;
      } else if (type == "text/html" && !have_html) {
        html = ToUtf8(bytes, charset ? charset : "");
        have_html = true;
      }
      return;
    }
    Attachment attachment;
    attachment.filename = filename ? ToUtf8(filename) : "";
    attachment.content_type = type;
    attachment.size_bytes = DecodedSize(part);
    attachment.inline_part =
        disposition != nullptr && !g_mime_content_disposition_is_attachment(disposition);
    AddAttachment(std::move(attachment));
  }

  /// Reads a forwarded message's text into `forwarded` (its own attachments into this
  /// message's), within forwarded_limit and the nesting limit.
  void ReadForwarded(GMimeMessage* inner, const std::string& subject, int depth) {
    if (forwarded_bytes >= forwarded_limit) return;
    ParsedMessage scratch;  // the forwarded message's own signals are not this message's
    Walker walker{limits, &scratch, options};
    walker.forwarded_bytes = forwarded_bytes;
    walker.Walk(g_mime_message_get_mime_part(inner), depth + 1);
    std::string text;
    if (walker.have_plain && !Trim(walker.plain).empty()) {
      text = walker.plain;
    } else if (walker.have_html) {
      text = HtmlToText(walker.html);
    } else {
      text = walker.calendar_text;
    }
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    GMimeObject* inner_object = GMIME_OBJECT(inner);
    auto [address, name] = HeaderMailbox(inner_object, "From", options);
    std::string block = "---------- Forwarded message ----------\n";
    if (!address.empty()) {
      block += "From: " + (name.empty() ? address : name + " <" + address + ">") + "\n";
    }
    if (const char* date = g_mime_object_get_header(inner_object, "Date")) {
      block += "Date: " + Trim(ToUtf8(date)) + "\n";
    }
    if (!subject.empty()) block += "Subject: " + subject + "\n";
    block += "\n" + Trim(text);
    block = TruncateUtf8(block, forwarded_limit - forwarded_bytes);
    forwarded_bytes += block.size();
    forwarded.push_back(std::move(block));
    // Messages forwarded inside the forwarded one, then its attachments.
    for (std::string& nested : walker.forwarded) {
      if (forwarded_bytes + nested.size() > forwarded_limit) break;
      forwarded_bytes += nested.size();
      forwarded.push_back(std::move(nested));
    }
    for (Attachment& attachment : scratch.attachments) AddAttachment(std::move(attachment));
  }

  /// Forwarded text read at most (the whole text is then cut to ParseLimits::max_text_bytes).
  size_t forwarded_limit = limits.max_text_bytes;

  void AddAttachment(Attachment attachment) {
    if (out->attachments.size() < limits.max_attachments) {
      out->attachments.push_back(std::move(attachment));
    }
  }
};

const char* Header(GMimeObject* object, const char* name) {
  return g_mime_object_get_header(object, name);
}

}  // namespace

std::pair<std::string, std::string> FirstMailboxOf(std::string_view value) {
  InitOnce();
  GMimeParserOptions* options = g_mime_parser_options_new();
  const char* fallback[] = {"UTF-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options, fallback);
  g_mime_parser_options_set_rfc2047_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_address_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  std::string unfolded;
  for (char c : value) {
    if (c != '\r' && c != '\n' && c != '\0') unfolded.push_back(c);
  }
  std::pair<std::string, std::string> mailbox;
  if (InternetAddressList* list =
          internet_address_list_parse(options, Base64WordsAsQ(unfolded).c_str())) {
    mailbox = FirstMailbox(list);
    g_object_unref(list);
  }
  g_mime_parser_options_free(options);
  return mailbox;
}

std::string CharsetToUtf8(std::string_view bytes, std::string_view charset) {
  return ToUtf8(bytes, std::string(charset));
}

std::optional<std::chrono::system_clock::time_point> ParseDate(std::string_view text) {
  InitOnce();
  std::string value(text);
  // "-04:00" (ISO 8601 style, as some providers write it) is "-0400" in RFC 5322.
  if (value.size() > 6) {
    size_t n = value.size();
    if ((value[n - 6] == '+' || value[n - 6] == '-') && value[n - 3] == ':' &&
        std::isdigit(static_cast<unsigned char>(value[n - 1]))) {
      value.erase(n - 3, 1);
    }
  }
  GDateTime* date = g_mime_utils_header_decode_date(value.c_str());
  if (date == nullptr) return std::nullopt;
  auto time = FromUnix(g_date_time_to_unix(date));
  g_date_time_unref(date);
  return time;
}

std::string TruncateUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Step back over continuation bytes (10xxxxxx) to the start of a character.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

std::string AsciiSpaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto byte = [&text, i](size_t k) {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
    };
    size_t space = 0;  // the length of the space separator at i, 0 when none
    if (byte(0) == 0xC2 && byte(1) == 0xA0) {
      space = 2;  // U+00A0
    } else if (byte(0) == 0xE1 && byte(1) == 0x9A && byte(2) == 0x80) {
      space = 3;  // U+1680
    } else if (byte(0) == 0xE2 && byte(1) == 0x80 &&
               ((byte(2) >= 0x80 && byte(2) <= 0x8A) || byte(2) == 0xAF)) {
      space = 3;  // U+2000..U+200A, U+202F
    } else if (byte(0) == 0xE2 && byte(1) == 0x81 && byte(2) == 0x9F) {
      space = 3;  // U+205F
    } else if (byte(0) == 0xE3 && byte(1) == 0x80 && byte(2) == 0x80) {
      space = 3;  // U+3000
    }
    if (space != 0) {
      out.push_back(' ');
      i += space;
    } else {
      out.push_back(text[i]);
      ++i;
    }
  }
  return out;
}

std::string DecodeFlowed(std::string_view text, bool delsp) {
  std::string out;
  out.reserve(text.size());
  std::string paragraph;  // the logical line being joined
  size_t depth = 0;       // its quote depth
  bool open = false;      // a paragraph is being joined
  auto emit = [&] {
    if (depth > 0) {
      out.append(depth, '>');
      out.push_back(' ');
    }
    out.append(paragraph);
    out.push_back('\n');
    paragraph.clear();
    open = false;
  };
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t line_depth = 0;
    while (line_depth < line.size() && line[line_depth] == '>') ++line_depth;
    line.remove_prefix(line_depth);
    if (!line.empty() && line.front() == ' ') line.remove_prefix(1);  // space-stuffing
    // A change of quote depth ends a paragraph, even after a soft break (RFC 3676 §4.5).
    if (open && line_depth != depth) emit();
    depth = line_depth;
    bool flowed = !line.empty() && line.back() == ' ' && line != "-- ";
    if (flowed && delsp) line.remove_suffix(1);
    paragraph.append(line);
    open = true;
    if (!flowed) emit();
  }
  if (open) emit();
  // No line end where the text had none.
  if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

namespace {

/// Whether `node` is a <blockquote type="cite">: the quoted message of a reply.
bool IsCitation(xmlNode* node) {
  xmlChar* type = xmlGetProp(node, reinterpret_cast<const xmlChar*>("type"));
  if (type == nullptr) return false;
  bool cite = Lower(reinterpret_cast<const char*>(type)) == "cite";
  xmlFree(type);
  return cite;
}

/// `cite`: inside a <blockquote type="cite">, whose lines open with "> ".
void HtmlWalk(xmlNode* node, std::string* out, int depth, bool cite = false) {
  // Appends visible text, opening a quoted line with "> ".
  auto put = [out, cite](std::string_view text) {
    if (cite && (out->empty() || out->back() == '\n')) out->append("> ");
    out->append(text);
  };
  static const char* const kSkipped[] = {"script", "style",    "head",
                                         "title",  "noscript", "template"};
  static const char* const kBlocks[] = {
      "p",       "div",     "tr",     "li",     "h1", "h2", "h3",  "h4",
      "h5",      "h6",      "table",  "ul",     "ol", "hr", "pre", "blockquote",
      "section", "article", "header", "footer", "dd", "dt"};
  for (; node != nullptr && depth < 200; node = node->next) {
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
      const char* content = reinterpret_cast<const char*>(node->content);
      if (content == nullptr) continue;
      // Runs of white space are one space in HTML. A no-break space is kept ("5&nbsp;000 €";
      // the quoted-history patterns read it as a space), but a text of no-break spaces only
      // (Outlook's empty paragraph, <o:p>&nbsp;</o:p>) is blank.
      std::string spaced = AsciiSpaces(content);
      bool blank = std::all_of(spaced.begin(), spaced.end(),
                               [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
      for (const char* c = content; *c && !blank; ++c) {
        if (std::isspace(static_cast<unsigned char>(*c))) {
          if (!out->empty() && out->back() != ' ' && out->back() != '\n') out->push_back(' ');
        } else {
          put(std::string_view(c, 1));
        }
      }
      if (blank && !out->empty() && out->back() != ' ' && out->back() != '\n') {
        out->push_back(' ');
      }
      continue;
    }
    if (node->type != XML_ELEMENT_NODE) continue;
    std::string name = Lower(reinterpret_cast<const char*>(node->name));
    if (std::find(std::begin(kSkipped), std::end(kSkipped), name) != std::end(kSkipped)) continue;
    bool block = std::find(std::begin(kBlocks), std::end(kBlocks), name) != std::end(kBlocks);
    auto new_line = [out] {
      while (!out->empty() && out->back() == ' ') out->pop_back();
      if (!out->empty() && out->back() != '\n') out->push_back('\n');
    };
    if (block) new_line();
    if (name == "li") put("- ");
    if (name == "td" || name == "th") {
      if (!out->empty() && out->back() != '\n' && out->back() != ' ') out->push_back(' ');
    }
    HtmlWalk(node->children, out, depth + 1, cite || (name == "blockquote" && IsCitation(node)));
    if (name == "br") out->push_back('\n');
    if (block) {
      new_line();
      if (name == "p" || name == "h1" || name == "h2" || name == "h3" || name == "table" ||
          name == "blockquote") {
        out->push_back('\n');
      }
    }
  }
}

}  // namespace

std::string HtmlToText(std::string_view html) {
  InitOnce();
  if (html.empty()) return "";
  htmlDocPtr document =
      htmlReadMemory(html.data(), static_cast<int>(std::min<size_t>(html.size(), 8 * 1024 * 1024)),
                     nullptr, "UTF-8",
                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                         HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
  if (document == nullptr) return "";
  std::string text;
  HtmlWalk(xmlDocGetRootElement(document), &text, 0);
  xmlFreeDoc(document);
  // At most one blank line in a row; no trailing blanks.
  std::string squeezed;
  int new_lines = 0;
  for (char c : text) {
    if (c == '\n') {
      while (!squeezed.empty() && squeezed.back() == ' ') squeezed.pop_back();
      if (++new_lines > 2) continue;
    } else if (c == ' ' && (squeezed.empty() || squeezed.back() == '\n')) {
      continue;
    } else {
      new_lines = 0;
    }
    squeezed.push_back(c);
  }
  return Trim(squeezed);
}

namespace {

/// A pattern for one line, with a cheap test of what every line it matches has.
struct LinePattern {
  std::regex regex;
  bool (*might_match)(std::string_view line);
};

/// White space as the patterns' \s has it (the "C" locale's).
bool IsPatternSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

/// The last character of `line` that is not white space, '\0' when there is none.
char LastNonSpace(std::string_view line) {
  size_t end = line.size();
  while (end > 0 && IsPatternSpace(line[end - 1])) --end;
  return end == 0 ? '\0' : line[end - 1];
}

/// The first character of `line` that is not white space, '\0' when there is none.
char FirstNonSpace(std::string_view line) {
  for (char c : line) {
    if (!IsPatternSpace(c)) return c;
  }
  return '\0';
}

/// Whether `line` contains `word` (lower-case ASCII), ignoring ASCII case.
bool ContainsAsciiNoCase(std::string_view line, std::string_view word) {
  if (word.empty()) return true;
  for (size_t i = 0; i + word.size() <= line.size(); ++i) {
    size_t j = 0;
    while (j < word.size() && std::tolower(static_cast<unsigned char>(line[i + j])) == word[j]) {
      ++j;
    }
    if (j == word.size()) return true;
  }
  return false;
}

}  // namespace

std::string StripQuotedHistory(std::string_view text, bool* stripped) {
  *stripped = false;
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  // The lines as the patterns read them: a no-break or other Unicode space is a space, so that
  // "a écrit\u00a0:" (Apple Mail, Outlook in French) and "De\u202f:" match as their ASCII
  // spelling does, and the quick tests below (last non-blank character…) see the same line.
  std::vector<std::string> read;
  read.reserve(lines.size());
  for (std::string_view line : lines) read.push_back(AsciiSpaces(line));
  static const LinePattern kAttribution{
      std::regex(
          R"(^\s*(On\s.{4,300}\swrote|Le\s.{4,300}\sa\s+écrit|Am\s.{4,300}\sschrieb(\s.{1,300})?|El\s.{4,300}\sescribió)\s*:\s*$)",
          std::regex::icase),
      [](std::string_view line) { return LastNonSpace(line) == ':'; }};
  static const LinePattern kSeparator{
      std::regex(
          R"(^\s*-{2,}\s*(Original Message|Message d'origine|Message original|Ursprüngliche Nachricht|Mensaje original)\s*-{2,}\s*$)",
          std::regex::icase),
      [](std::string_view line) { return LastNonSpace(line) == '-'; }};
  // What starts a forwarded message (Gmail, Thunderbird, Apple Mail; English, French, German,
  // Spanish, Italian).
  static const LinePattern kForward{
      std::regex(
          R"(^\s*(-{2,}\s*(Forwarded message|Forwarded Message|Message transféré|Weitergeleitete Nachricht|Mensaje reenviado|Messaggio inoltrato)\s*-{2,}|(Begin forwarded message|Début du message réexpédié|Anfang der weitergeleiteten Nachricht)\s*:)\s*$)",
          std::regex::icase),
      [](std::string_view line) {
        char last = LastNonSpace(line);
        return last == '-' || last == ':';
      }};
  // Outlook's line above the quoted header block.
  static const LinePattern kRule{std::regex(R"(^\s*_{10,}\s*$)"),
                                 [](std::string_view line) { return FirstNonSpace(line) == '_'; }};
  // The signature Outlook's mobile apps put above the quoted history.
  static const LinePattern kMobileSignature{
      std::regex(
          R"(^\s*(Get Outlook for (iOS|Android)|Outlook für (iOS|Android) beziehen|Télécharger Outlook pour (iOS|Android)|Obtener Outlook para (iOS|Android))\b.*$)",
          std::regex::icase),
      [](std::string_view line) { return ContainsAsciiNoCase(line, "outlook"); }};
  static const LinePattern kHeaderFrom{
      std::regex(R"(^\s*\*?(From|De|Von|Da)\s?\*?\s*:\s*\S.*$)", std::regex::icase),
      [](std::string_view line) { return line.find(':') != std::string_view::npos; }};
  static const LinePattern kHeaderNext{
      std::regex(
          R"(^\s*\*?(Sent|Date|Datum|Envoyé|Gesendet|Inviato|Enviado|To|À|A|An|Para|Cc|Kopie|Subject|Objet|Betreff|Oggetto|Asunto)\s?\*?\s*:.*$)",
          std::regex::icase),
      [](std::string_view line) { return line.find(':') != std::string_view::npos; }};
  // std::regex is slow (microseconds per pattern and line, even when nothing matches), so a
  // pattern is tried only on a line that has what each of its matches must have: most lines of
  // a message have none of it.
  auto matches = [](const LinePattern& pattern, std::string_view line) {
    if (line.size() > 1000 || !pattern.might_match(line)) return false;
    return std::regex_match(line.begin(), line.end(), pattern.regex);
  };
  // The next non-blank line after `i`, or lines.size().
  auto next_content = [&read](size_t i) {
    for (++i; i < read.size(); ++i) {
      if (read[i].find_first_not_of(" \t") != std::string::npos) return i;
    }
    return read.size();
  };
  auto starts_quote = [&](size_t i) {
    if (matches(kSeparator, read[i]) || matches(kAttribution, read[i]) ||
        matches(kForward, read[i]) || matches(kMobileSignature, read[i])) {
      return true;
    }
    if (matches(kRule, read[i])) {
      // "________________________________" then "From: …".
      size_t next = next_content(i);
      return next < lines.size() && matches(kHeaderFrom, read[next]);
    }
    if (i + 1 >= lines.size()) return false;
    // An attribution wrapped over two lines by the sender's mail program.
    std::string joined = read[i] + " " + read[i + 1];
    if (!read[i].empty() && read[i][0] != '>' && matches(kAttribution, joined) &&
        Trim(read[i + 1]).size() < 80) {
      return true;
    }
    // An Outlook-style header block: "From: …" then "Sent: …" (and usually "To: …").
    return matches(kHeaderFrom, read[i]) && matches(kHeaderNext, read[i + 1]);
  };
  size_t cut = lines.size();
  for (size_t i = 0; i < lines.size() && cut == lines.size(); ++i) {
    if (starts_quote(i)) cut = i;
  }
  // A forward is not a reply: what was forwarded is the content. So is a message whose first
  // line already starts a quotation (nothing was written above it).
  if (cut < lines.size()) {
    size_t first = read[0].find_first_not_of(" \t") != std::string::npos ? 0 : next_content(0);
    bool forwarded = first == cut;
    for (size_t i = 0; i <= cut && !forwarded; ++i) forwarded = matches(kForward, read[i]);
    if (forwarded) return Trim(text);
  }
  std::string result;
  bool removed = cut < lines.size();
  for (size_t i = 0; i < cut; ++i) {
    size_t first_char = read[i].find_first_not_of(" \t");
    if (first_char != std::string::npos && read[i][first_char] == '>') {
      removed = true;
      continue;
    }
    // A line of no-break spaces only (Outlook's <o:p>&nbsp;</o:p>) is a blank line.
    if (first_char != std::string::npos) result.append(lines[i]);
    result.push_back('\n');
  }
  std::string trimmed = Trim(result);
  if (!removed || trimmed.empty()) {
    return Trim(text);
  }
  *stripped = true;
  return trimmed;
}

bool IsForwardSubject(std::string_view subject) {
  static const std::regex kForwardSubject(R"(^\s*(Fwd?|TR|WG|RV|I|Enc|Doorst)\s*:.*)",
                                          std::regex::icase);
  std::string_view head = subject.substr(0, 200);
  return std::regex_match(head.begin(), head.end(), kForwardSubject);
}

ParsedMessage ParseMessage(std::string_view raw, const ParseLimits& limits) {
  InitOnce();
  ParsedMessage parsed;
  HeaderCuts cuts;
  GByteArray* cut = CutHeaderFields(raw, limits, &cuts);
  GMimeStream* stream = cut != nullptr ? g_mime_stream_mem_new_with_byte_array(cut)  // owns it
                                       : g_mime_stream_mem_new_with_buffer(raw.data(), raw.size());
  parsed.truncated_headers = std::move(cuts.names);
  GMimeParser* parser = g_mime_parser_new_with_stream(stream);
  g_object_unref(stream);
  GMimeParserOptions* options = g_mime_parser_options_new();
  // Headers in raw 8-bit text: UTF-8 when it is valid, windows-1252 otherwise.
  const char* fallback[] = {"UTF-8", "windows-1252", nullptr};
  g_mime_parser_options_set_fallback_charsets(options, fallback);
  g_mime_parser_options_set_rfc2047_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_address_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
  GMimeMessage* message = g_mime_parser_construct_message(parser, options);
  g_object_unref(parser);
  if (message == nullptr) {
    g_mime_parser_options_free(options);
    return parsed;
  }
  GMimeObject* object = GMIME_OBJECT(message);

  if (const char* id = g_mime_message_get_message_id(message)) {
    parsed.message_id = Trim(ToUtf8(id));
  }
  // From, Reply-To and Subject from their raw values, B words read one by one (Base64WordsAsQ).
  auto [from_address, from_name] = HeaderMailbox(object, "From", options);
  parsed.from_address = from_address;
  parsed.from_name = from_name;
  auto [reply_to_address, reply_to_name] = HeaderMailbox(object, "Reply-To", options);
  parsed.reply_to_address = reply_to_address;
  parsed.reply_to_name = reply_to_name;
  parsed.to_addresses_omitted =
      AddAddresses(g_mime_message_get_to(message), &parsed.to_addresses, limits.max_addresses) +
      cuts.to_omitted;
  parsed.cc_addresses_omitted =
      AddAddresses(g_mime_message_get_cc(message), &parsed.cc_addresses, limits.max_addresses) +
      cuts.cc_omitted;
  parsed.subject = DecodedSubject(object, options);
  if (parsed.subject.size() > kMaxSubjectBytes) {
    parsed.subject = TruncateUtf8(parsed.subject, kMaxSubjectBytes);
    NoteTruncatedHeader(&parsed.truncated_headers, "Subject");
  }
  if (GDateTime* date = g_mime_message_get_date(message)) {
    parsed.date = FromUnix(g_date_time_to_unix(date));
  }
  std::vector<std::string> in_reply_to = ParseReferences(options, Header(object, "In-Reply-To"));
  if (!in_reply_to.empty()) parsed.in_reply_to = in_reply_to.front();
  parsed.references = ParseReferences(options, Header(object, "References"));

  auto header_text = [object](const char* name) {
    const char* value = Header(object, name);
    return value ? Trim(ToUtf8(value)) : std::string();
  };
  parsed.auto_submitted = header_text("Auto-Submitted");
  parsed.precedence = header_text("Precedence");
  parsed.has_autoreply_header = Header(object, "X-Autoreply") != nullptr ||
                                Header(object, "X-Autorespond") != nullptr ||
                                Header(object, "X-Autoresponder") != nullptr;
  std::string suppress = Lower(header_text("X-Auto-Response-Suppress"));
  parsed.has_exchange_autoreply_header =
      Header(object, "X-MS-Exchange-Inbox-Rules-Loop") != nullptr ||
      suppress.find("all") != std::string::npos || suppress.find("oof") != std::string::npos;
  parsed.has_list_header =
      Header(object, "List-Id") != nullptr || Header(object, "List-Unsubscribe") != nullptr;
  parsed.has_loop_header = Header(object, kLoopHeader) != nullptr;
  if (const char* return_path = Header(object, "Return-Path")) {
    parsed.has_return_path = true;
    std::string path = Trim(ToUtf8(return_path));
    if (!path.empty() && path.front() == '<') path.erase(0, 1);
    if (!path.empty() && path.back() == '>') path.pop_back();
    parsed.return_path = Lower(Trim(path));
  }

  GMimeObject* body = g_mime_message_get_mime_part(message);
  if (body != nullptr) {
    GMimeContentType* type = g_mime_object_get_content_type(body);
    parsed.is_report = type != nullptr && g_mime_content_type_is_type(type, "multipart", "report");
  }
  Walker walker{limits, &parsed, options};
  walker.Walk(body, 0);
  std::string text;
  if (walker.have_plain && !Trim(walker.plain).empty()) {
    text = walker.plain;
  } else if (walker.have_html) {
    text = HtmlToText(walker.html);
    parsed.text_from_html = true;
  }
  if (Trim(text).empty() && !walker.calendar_text.empty()) {
    text = walker.calendar_text;  // an invitation with no text of its own
  }
  std::string cleaned;
  cleaned.reserve(text.size());
  for (char c : text) {
    if (c != '\r') cleaned.push_back(c);
  }
  std::string own = IsForwardSubject(parsed.subject)
                        ? Trim(cleaned)
                        : StripQuotedHistory(cleaned, &parsed.quoted_history_stripped);
  // Messages forwarded as attachments: their text after this message's own.
  for (const std::string& block : walker.forwarded) {
    if (own.size() >= limits.max_text_bytes) break;
    if (!own.empty()) own += "\n\n";
    own += block;
  }
  parsed.text = TruncateUtf8(own, limits.max_text_bytes);
  g_object_unref(message);
  g_mime_parser_options_free(options);
  return parsed;
}

}  // namespace leadflow::email
