// Fuzz target: email-ingest's SMTP/LMTP state machine, fed the input as client lines (the
// first byte picks SMTP or LMTP, TLS offered or not, and the delivery outcomes).

#include <cctype>
#include <cstddef>
#include <string>

#include "email-ingest/smtp_session.h"
#include "fuzz/fuzz.h"

namespace {

using leadflow::fuzz::Check;

/// Every reply is whole lines "ddd[ -]text\r\n", the last one with a space.
void CheckReply(const std::string& reply) {
  if (reply.empty()) return;
  Check(reply.size() >= 6 && reply.substr(reply.size() - 2) == "\r\n", "replies end in CRLF");
  size_t start = 0;
  while (start < reply.size()) {
    size_t end = reply.find("\r\n", start);
    Check(end != std::string::npos, "every reply line ends in CRLF");
    std::string_view line(reply.data() + start, end - start);
    Check(line.size() >= 4, "a reply line has a code");
    Check(line[0] >= '2' && line[0] <= '5', "the class digit is 2 to 5");
    Check(std::isdigit(static_cast<unsigned char>(line[1])) &&
              std::isdigit(static_cast<unsigned char>(line[2])),
          "three digits");
    Check(line[3] == ' ' || line[3] == '-', "code then space or hyphen");
    Check(line.find('\r') == std::string_view::npos && line.find('\n') == std::string_view::npos,
          "no bare CR or LF inside a reply line");
    start = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  static const leadflow::email::RecipientPolicy policy =
      leadflow::email::RecipientPolicy::Parse("sales@acme.test,support.acme.test");
  leadflow::email::SmtpLimits limits{
      .max_message_bytes = 4096, .max_recipients = 5, .max_command_line = 512};
  // Inside DATA a line longer than this goes to the session in pieces, as the connection passes
  // it (smtp_server.cc), so that the fuzzer reaches the piece path with short inputs.
  constexpr size_t kPiece = 64;
  leadflow::email::SmtpSession session(flags & 1, "mx.test", limits, &policy, flags & 2);
  CheckReply(session.Greeting());
  std::string_view input = leadflow::fuzz::AsText(data + 1, size - 1);
  int deliveries = 0;
  while (!input.empty()) {
    size_t end = input.find('\n');
    std::string_view line = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (session.in_data()) {
      while (line.size() > kPiece) {
        CheckReply(session.OnDataFragment(line.substr(0, kPiece)).reply);
        line.remove_prefix(kPiece);
      }
    }
    bool too_long = !session.in_data() && line.size() > limits.max_command_line;
    if (too_long) line = line.substr(0, limits.max_command_line);
    leadflow::email::SmtpStep step = session.OnLine(line, too_long);
    CheckReply(step.reply);
    if (step.start_tls) session.ResetAfterTls();
    if (step.deliver) {
      Check(session.awaiting_delivery(), "a delivery waits for its outcome");
      Check(!session.recipients().empty(), "a message has recipients");
      Check(session.recipients().size() <= limits.max_recipients, "recipient limit");
      for (const std::string& recipient : session.recipients()) {
        Check(policy.Accepts(recipient), "only our recipients are accepted");
      }
      Check(session.message().size() <= limits.max_message_bytes, "size limit");
      auto outcome = static_cast<leadflow::email::DeliveryOutcome>((flags >> 2) % 3);
      size_t recipients = session.recipients().size();
      std::string reply = session.OnDelivered(outcome);
      CheckReply(reply);
      size_t lines = 0;
      for (size_t at = reply.find("\r\n"); at != std::string::npos;
           at = reply.find("\r\n", at + 2)) {
        ++lines;
      }
      Check(lines == ((flags & 1) ? recipients : 1), "LMTP: one reply per recipient");
      ++deliveries;
    }
    if (step.close) break;
  }
  return 0;
}
