#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leadflow::email {

/// An attachment described without its content.
struct Attachment {
  std::string filename;
  std::string content_type;  // "application/pdf"
  int64_t size_bytes = 0;    // decoded
  bool inline_part = false;
};

/// What the parser reads out of one RFC 5322 message. Every string is UTF-8 (headers decoded
/// from RFC 2047 words or raw 8-bit text, bodies converted from their charset).
struct ParsedMessage {
  std::string message_id;  // without angle brackets; empty when missing
  std::string from_address;
  std::string from_name;
  std::string reply_to_address;
  std::string reply_to_name;
  std::vector<std::string> to_addresses;
  std::vector<std::string> cc_addresses;
  std::string subject;
  std::optional<std::chrono::system_clock::time_point> date;
  std::string in_reply_to;              // first Message-ID of In-Reply-To
  std::vector<std::string> references;  // oldest first; the root and the newest kMaxReferences
  std::string text;                     // the readable text, quoted history removed
  bool text_from_html = false;
  bool quoted_history_stripped = false;
  std::vector<Attachment> attachments;

  // What the never-a-lead filters look at (header values as received, trimmed).
  std::string auto_submitted;
  std::string precedence;
  bool has_autoreply_header = false;  // X-Autoreply, X-Autorespond, X-Autoresponder
  /// Exchange's automatic replies: X-MS-Exchange-Inbox-Rules-Loop (a message an inbox rule
  /// made), X-Auto-Response-Suppress naming All or OOF (what Exchange puts on its own replies).
  bool has_exchange_autoreply_header = false;
  bool has_list_header = false;  // List-Id, List-Unsubscribe
  bool is_report = false;        // multipart/report (delivery or read notifications)
  /// The first calendar part's iTIP method, upper case ("REQUEST", "REPLY"…; calendar.h), empty
  /// without one; a calendar-only message's text is its event in words.
  std::string calendar_method;
  bool has_loop_header = false;  // our own X-LeadFlow-Loop
  std::string return_path;       // Return-Path header (the envelope sender, once delivered)
  bool has_return_path = false;

  // What the caps left out (docs/email-ingest.md, "Caps"), carried by the event and shown with
  // the kept message, so that a cut list or header is never mistaken for the whole.
  /// Addresses of To (Cc) not in to_addresses (cc_addresses): past ParseLimits::max_addresses,
  /// or in the part of an over-long To (Cc) field that was cut.
  uint32_t to_addresses_omitted = 0;
  uint32_t cc_addresses_omitted = 0;
  /// Header fields cut to the caps, by name as the message spelt them, each name once (case
  /// ignored), at most kMaxTruncatedHeaderNames.
  std::vector<std::string> truncated_headers;
};

/// LeadFlow's loop header: a message carrying it was sent by LeadFlow itself.
inline constexpr char kLoopHeader[] = "X-LeadFlow-Loop";

/// Message-IDs kept of a References header: past it, the first (the thread's root) and the
/// newest.
inline constexpr size_t kMaxReferences = 100;

/// The Subject kept at most (RFC 5322's line length); a longer one is cut and named in
/// truncated_headers.
inline constexpr size_t kMaxSubjectBytes = 998;

/// Names listed in ParsedMessage::truncated_headers at most.
inline constexpr size_t kMaxTruncatedHeaderNames = 16;

struct ParseLimits {
  /// Text kept at most (bytes of UTF-8, cut on a character boundary).
  size_t max_text_bytes = 64 * 1024;
  /// Attachments described at most; the rest are counted in the last entry's absence.
  size_t max_attachments = 100;
  /// MIME nesting followed at most (deeper parts are ignored).
  int max_depth = 20;
  /// A header field (name, value and folding) longer than this is cut: an address list after
  /// its last whole address, another field at its last space (else at the cap). Every channel
  /// takes such a message (a message within the size limit is never refused for a long line)
  /// and names the field in truncated_headers.
  size_t max_header_field_bytes = 64 * 1024;
  /// The address fields (From, Sender, Reply-To, To, Cc, Bcc and their Resent- forms) together
  /// at most: GMime makes an object of every address of every such field, so that many fields
  /// of short addresses within the size limit would otherwise cost hundreds of megabytes. Past
  /// it, the fields are cut (or left out) as above.
  size_t max_address_field_bytes = 128 * 1024;
  /// Addresses kept of To and of Cc each; the rest are counted (to/cc_addresses_omitted).
  size_t max_addresses = 100;
};

/// Parses a whole message (headers and body, CRLF or LF line ends) with GMime. Never fails:
/// broken MIME gives what could be read (GMime is lenient, as mail readers are).
ParsedMessage ParseMessage(std::string_view raw, const ParseLimits& limits = {});

/// The first mailbox of an address header value ("\"Zoë O'Brien\" <zoe@example.org>", RFC 2047
/// words decoded): its address (lower case) and display name, empty when there is none.
std::pair<std::string, std::string> FirstMailboxOf(std::string_view value);

/// Readable text of an HTML document (libxml2's HTML parser): block elements and <br> end
/// lines, script/style/head dropped, entities decoded, blank runs squeezed (a text of no-break
/// spaces only is blank; other no-break spaces are kept), and the lines of a
/// <blockquote type="cite"> (Apple Mail, Thunderbird: the quoted message) opened with "> " as a
/// plain-text reply quotes them.
std::string HtmlToText(std::string_view html);

/// `text` with each Unicode space separator (general category Zs: U+00A0 no-break space,
/// U+202F narrow no-break space that French typography puts before ':', U+2000..U+200A,
/// U+1680, U+205F, U+3000) written as an ASCII space; other bytes untouched.
std::string AsciiSpaces(std::string_view text);

/// The text of a text/plain part with format=flowed (RFC 3676: Thunderbird, Apple Mail) as its
/// writer typed it: a line ending in a space is a soft break, joined with the next line of the
/// same quote depth (the trailing space removed too when `delsp`, DelSp=yes); space-stuffing
/// undone; the quote depth kept as one "> " per level ahead of each joined line; the signature
/// separator "-- " is never joined. Line ends may be CRLF or LF; the result's are LF. Never
/// longer than `text`.
std::string DecodeFlowed(std::string_view text, bool delsp);

/// The reply's own text without the quoted history: cut at the first recognisable start of a
/// quotation ("On … wrote:", "Le … a écrit :", "-----Original Message-----", Outlook's
/// "________________" line or header block "From:/Von:/De: …" then "Sent:/Gesendet:/Envoyé: …",
/// the "Get Outlook for iOS" signature) and without '>' lines. Any Unicode space counts as a
/// space there ("a écrit\u00a0:", "De\u202f:"); the kept lines are returned as written. `stripped`
/// tells whether anything was cut. A forward is not a reply: the text is kept whole when its first
/// non-blank line starts a quotation or a forwarded message ("---------- Forwarded message
/// ---------", "Begin forwarded message:"…), and when cutting would leave nothing.
std::string StripQuotedHistory(std::string_view text, bool* stripped);

/// A forwarded message's subject: "Fwd:", "Fw:", "TR:" (French), "WG:" (German), "RV:"
/// (Spanish), "I:" (Italian)… Its text is kept whole: what was forwarded is the content.
bool IsForwardSubject(std::string_view subject);

/// `bytes` in `charset` (as declared; ISO-8859-1 read as windows-1252, undeclared or false
/// UTF-8 as windows-1252) converted to valid UTF-8.
std::string CharsetToUtf8(std::string_view bytes, std::string_view charset);

/// An RFC 5322 date ("Mon, 30 Nov 2026 09:12:40 +0100", lenient as mail readers are).
std::optional<std::chrono::system_clock::time_point> ParseDate(std::string_view text);

/// `text` cut to at most `max_bytes` on a UTF-8 character boundary.
std::string TruncateUtf8(std::string_view text, size_t max_bytes);

}  // namespace leadflow::email
