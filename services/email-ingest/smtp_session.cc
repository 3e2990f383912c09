#include "email-ingest/smtp_session.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace leadflow::email {
namespace {

std::string Lower(std::string_view text) { return absl::AsciiStrToLower(std::string(text)); }
std::string Upper(std::string_view text) { return absl::AsciiStrToUpper(std::string(text)); }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimLeft(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  return text;
}

std::string_view Trim(std::string_view text) {
  text = TrimLeft(text);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

/// The non-empty pieces of `text` between `separator`s.
std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  while (!text.empty()) {
    size_t end = text.find(separator);
    std::string_view piece = text.substr(0, end);
    if (!piece.empty()) pieces.push_back(piece);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return pieces;
}

/// `text` safe to echo in a reply: control characters (a bare CR or LF would forge reply lines)
/// become '?'.
std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

/// Whether `line` starts with `prefix`, ignoring case.
bool StartsWithNoCase(std::string_view line, std::string_view prefix) {
  return line.size() >= prefix.size() && Upper(line.substr(0, prefix.size())) == Upper(prefix);
}

bool PlausibleAddress(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
  for (char c : address) {
    if (static_cast<unsigned char>(c) < 0x21 || c == '<' || c == '>') return false;
  }
  return true;
}

}  // namespace

RecipientPolicy RecipientPolicy::Parse(std::string_view entries) {
  RecipientPolicy policy;
  for (std::string_view entry : Split(entries, ',')) {
    std::string item = Lower(Trim(entry));
    if (item.empty()) continue;
    if (item.front() == '@') {
      policy.domains_.push_back(item.substr(1));
    } else if (item.find('@') != std::string::npos) {
      policy.addresses_.push_back(item);
    } else {
      policy.domains_.push_back(item);
    }
  }
  return policy;
}

bool RecipientPolicy::Accepts(std::string_view address) const {
  std::string lower = Lower(address);
  if (std::find(addresses_.begin(), addresses_.end(), lower) != addresses_.end()) return true;
  size_t at = lower.rfind('@');
  if (at == std::string::npos) return false;
  std::string domain = lower.substr(at + 1);
  return std::find(domains_.begin(), domains_.end(), domain) != domains_.end();
}

std::optional<SmtpPath> ParseSmtpPath(std::string_view text) {
  text = TrimLeft(text);
  SmtpPath path;
  std::string_view rest;
  if (!text.empty() && text.front() == '<') {
    size_t close = text.find('>');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view inside = text.substr(1, close - 1);
    // A source route ("@relay1,@relay2:user@host") is ignored, as RFC 5321 §3.3 allows.
    if (!inside.empty() && inside.front() == '@') {
      size_t colon = inside.find(':');
      if (colon == std::string_view::npos) return std::nullopt;
      inside = inside.substr(colon + 1);
    }
    path.address = std::string(inside);
    rest = text.substr(close + 1);
  } else {
    // Without brackets (some old clients): the address runs to the first space.
    size_t space = text.find(' ');
    path.address = std::string(text.substr(0, space));
    rest = space == std::string_view::npos ? std::string_view() : text.substr(space);
    if (path.address.empty()) return std::nullopt;
  }
  if (!rest.empty() && rest.front() != ' ') return std::nullopt;
  for (std::string_view parameter : Split(rest, ' ')) {
    size_t equals = parameter.find('=');
    std::string name = Upper(parameter.substr(0, equals));
    std::string value =
        equals == std::string_view::npos ? "" : std::string(parameter.substr(equals + 1));
    if (name.empty()) return std::nullopt;
    path.parameters.emplace_back(std::move(name), std::move(value));
  }
  return path;
}

SmtpSession::SmtpSession(bool lmtp, std::string hostname, SmtpLimits limits,
                         const RecipientPolicy* policy, bool tls_offered)
    : lmtp_(lmtp),
      hostname_(std::move(hostname)),
      limits_(limits),
      policy_(policy),
      tls_offered_(tls_offered) {}

std::string SmtpSession::Greeting() const {
  return absl::StrCat("220 ", hostname_, lmtp_ ? " LMTP" : " ESMTP", " LeadFlow ready\r\n");
}

void SmtpSession::ResetTransaction() {
  mail_from_.clear();
  recipients_.clear();
  message_.clear();
  message_.shrink_to_fit();
  message_too_large_ = false;
  mid_line_ = false;
}

void SmtpSession::ResetAfterTls() {
  ResetTransaction();
  client_name_.clear();
  tls_active_ = true;
  state_ = State::kStart;
}

SmtpStep SmtpSession::Error(std::string reply) {
  ++stats_.syntax_errors;
  if (++errors_ > limits_.max_errors) {
    return {.reply = "421 4.7.0 Too many errors, closing connection\r\n", .close = true};
  }
  return {.reply = std::move(reply)};
}

std::string SmtpSession::Ehlo(std::string_view verb, std::string_view argument) const {
  if (verb == "HELO") return absl::StrCat("250 ", hostname_, "\r\n");
  std::string reply = absl::StrCat("250-", hostname_, " greets ", std::string(argument), "\r\n");
  absl::StrAppend(&reply, "250-PIPELINING\r\n", "250-SIZE ", limits_.max_message_bytes, "\r\n",
                  "250-8BITMIME\r\n", "250-SMTPUTF8\r\n");
  if (tls_offered_ && !tls_active_) absl::StrAppend(&reply, "250-STARTTLS\r\n");
  absl::StrAppend(&reply, "250 ENHANCEDSTATUSCODES\r\n");
  return reply;
}

SmtpStep SmtpSession::OnLine(std::string_view line, bool too_long) {
  if (state_ == State::kData) return OnDataLine(line);
  if (state_ == State::kDelivering) {
    // The connection holds further input until the delivery is answered; never reached.
    return {.reply = "451 4.3.0 Busy\r\n"};
  }
  if (too_long) return Error("500 5.5.2 Line too long\r\n");
  return OnCommand(line);
}

SmtpStep SmtpSession::OnCommand(std::string_view line) {
  size_t space = line.find(' ');
  std::string verb = Upper(line.substr(0, space));
  std::string_view argument =
      space == std::string_view::npos ? std::string_view() : Trim(line.substr(space + 1));

  if (verb == "EHLO" || verb == "HELO" || verb == "LHLO") {
    if ((verb == "LHLO") != lmtp_) {
      return Error(lmtp_ ? "500 5.5.1 This is LMTP: use LHLO\r\n"
                         : "500 5.5.1 Command unrecognized\r\n");
    }
    if (argument.empty()) return Error(absl::StrCat("501 5.5.4 Syntax: ", verb, " hostname\r\n"));
    ResetTransaction();
    // Echoed in the answer: no control character (a bare CR or LF would forge reply lines).
    client_name_ = Printable(argument.substr(0, 255));
    state_ = State::kGreeted;
    return {.reply = Ehlo(verb, client_name_)};
  }
  if (verb == "MAIL") {
    if (state_ == State::kStart) return Error("503 5.5.1 Say hello first (EHLO)\r\n");
    if (state_ != State::kGreeted) return Error("503 5.5.1 Nested MAIL command\r\n");
    if (!StartsWithNoCase(line, "MAIL FROM:"))
      return Error("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    std::optional<SmtpPath> path = ParseSmtpPath(line.substr(10));
    if (!path) return Error("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    if (!path->address.empty() && !PlausibleAddress(path->address)) {
      return Error("501 5.1.7 Bad sender address syntax\r\n");
    }
    for (const auto& [name, value] : path->parameters) {
      if (name == "SIZE") {
        uint64_t size = 0;
        if (!absl::SimpleAtoi(value, &size)) return Error("501 5.5.4 Bad SIZE parameter\r\n");
        if (size > limits_.max_message_bytes) {
          ++stats_.too_large;
          return {.reply = "552 5.3.4 Message size exceeds fixed maximum message size\r\n"};
        }
      } else if (name == "BODY") {
        std::string body = Upper(value);
        if (body != "7BIT" && body != "8BITMIME") return Error("501 5.5.4 Bad BODY parameter\r\n");
      } else if (name == "SMTPUTF8") {
        if (!value.empty()) return Error("501 5.5.4 SMTPUTF8 takes no value\r\n");
      } else {
        return Error(absl::StrCat("555 5.5.4 Unsupported parameter ", Printable(name.substr(0, 32)),
                                  "\r\n"));
      }
    }
    mail_from_ = path->address;
    state_ = State::kMail;
    return {.reply = "250 2.1.0 Ok\r\n"};
  }
  if (verb == "RCPT") {
    if (state_ != State::kMail && state_ != State::kRcpt) {
      return Error("503 5.5.1 Need MAIL before RCPT\r\n");
    }
    if (!StartsWithNoCase(line, "RCPT TO:"))
      return Error("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    std::optional<SmtpPath> path = ParseSmtpPath(line.substr(8));
    if (!path || path->address.empty() || !PlausibleAddress(path->address)) {
      return Error("501 5.1.3 Bad recipient address syntax\r\n");
    }
    for (const auto& [name, value] : path->parameters) {
      return Error(
          absl::StrCat("555 5.5.4 Unsupported parameter ", Printable(name.substr(0, 32)), "\r\n"));
    }
    if (policy_ == nullptr || !policy_->Accepts(path->address)) {
      ++stats_.recipients_refused;
      return {.reply = "550 5.1.1 Recipient address rejected: not a mailbox of ours\r\n"};
    }
    if (recipients_.size() >= limits_.max_recipients) {
      ++stats_.too_many_recipients;
      return {.reply = "452 4.5.3 Too many recipients\r\n"};
    }
    recipients_.push_back(Lower(path->address));
    state_ = State::kRcpt;
    return {.reply = "250 2.1.5 Ok\r\n"};
  }
  if (verb == "DATA") {
    if (state_ == State::kMail) return Error("554 5.5.1 No valid recipients\r\n");
    if (state_ != State::kRcpt) return Error("503 5.5.1 Need RCPT before DATA\r\n");
    if (!argument.empty()) return Error("501 5.5.4 DATA takes no argument\r\n");
    state_ = State::kData;
    message_.clear();
    return {.reply = "354 3.0.0 End data with <CR><LF>.<CR><LF>\r\n"};
  }
  if (verb == "RSET") {
    ResetTransaction();
    if (state_ != State::kStart) state_ = State::kGreeted;
    return {.reply = "250 2.0.0 Ok\r\n"};
  }
  if (verb == "NOOP") return {.reply = "250 2.0.0 Ok\r\n"};
  if (verb == "QUIT") return {.reply = "221 2.0.0 Bye\r\n", .close = true};
  if (verb == "VRFY") {
    return {.reply = "252 2.5.0 Cannot VRFY user, but will accept message for our mailboxes\r\n"};
  }
  if (verb == "HELP") {
    return {.reply = absl::StrCat("214 2.0.0 Commands: ", lmtp_ ? "LHLO" : "EHLO HELO",
                                  " MAIL RCPT DATA RSET NOOP QUIT VRFY",
                                  tls_offered_ ? " STARTTLS" : "", "\r\n")};
  }
  if (verb == "STARTTLS") {
    if (!tls_offered_) return Error("502 5.5.1 STARTTLS not available\r\n");
    if (tls_active_) return Error("503 5.5.1 TLS already active\r\n");
    if (!argument.empty()) return Error("501 5.5.4 STARTTLS takes no argument\r\n");
    if (state_ != State::kGreeted && state_ != State::kStart) {
      return Error("503 5.5.1 STARTTLS inside a transaction\r\n");
    }
    return {.reply = "220 2.0.0 Ready to start TLS\r\n", .start_tls = true};
  }
  return Error("500 5.5.2 Command unrecognized\r\n");
}

SmtpStep SmtpSession::OnDataLine(std::string_view line) {
  if (line == "." && !mid_line_) {
    if (message_too_large_) {
      ResetTransaction();
      state_ = State::kGreeted;
      ++stats_.too_large;
      return {.reply = "552 5.3.4 Message size exceeds fixed maximum message size\r\n"};
    }
    state_ = State::kDelivering;
    return {.deliver = true};
  }
  AppendData(line, /*line_end=*/true);
  return {};
}

SmtpStep SmtpSession::OnDataFragment(std::string_view piece) {
  if (state_ != State::kData) {
    return {};  // the connection passes pieces only inside DATA
  }
  AppendData(piece, /*line_end=*/false);
  return {};
}

void SmtpSession::AppendData(std::string_view bytes, bool line_end) {
  const bool line_start = !mid_line_;
  mid_line_ = !line_end;
  if (message_too_large_) {
    return;  // read to the final "." and answered 552 there
  }
  if (line_start && !bytes.empty() && bytes.front() == '.') {
    bytes.remove_prefix(1);  // dot-unstuffing
  }
  const size_t added = bytes.size() + (line_end ? 2 : 0);
  if (message_.size() + added > limits_.max_message_bytes) {
    message_too_large_ = true;
    message_.clear();
    message_.shrink_to_fit();
    return;
  }
  message_.append(bytes);
  if (line_end) {
    message_.append("\r\n");
  }
}

std::string SmtpSession::OnDelivered(DeliveryOutcome outcome, std::string_view detail) {
  std::string line;
  switch (outcome) {
    case DeliveryOutcome::kAccepted:
      line = "250 2.0.0 Ok: accepted";
      break;
    case DeliveryOutcome::kTemporary:
      line = "451 4.3.0 Temporary failure, please try again later";
      break;
    case DeliveryOutcome::kRejected:
      line = absl::StrCat("554 5.6.0 Message refused", detail.empty() ? "" : ": ",
                          std::string(detail));
      break;
  }
  std::string reply;
  if (lmtp_) {
    // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
    for (const std::string& recipient : recipients_) {
      absl::StrAppend(&reply, line, " <", recipient, ">\r\n");
    }
  } else {
    absl::StrAppend(&reply, line, "\r\n");
  }
  ResetTransaction();
  state_ = State::kGreeted;
  return reply;
}

}  // namespace leadflow::email
