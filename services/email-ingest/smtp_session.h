#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leadflow::email {

/// Which recipients are ours: exact addresses ("sales@acme.test") and whole domains
/// ("acme.test", every address at it). Anything else is refused with 550 5.1.1, so the listener
/// is never an open relay.
class RecipientPolicy {
 public:
  /// `entries`: comma-separated; an entry with '@' is an address, without one a domain
  /// ("@acme.test" is the domain too). Case-insensitive.
  static RecipientPolicy Parse(std::string_view entries);
  bool Accepts(std::string_view address) const;
  bool empty() const { return addresses_.empty() && domains_.empty(); }

 private:
  std::vector<std::string> addresses_;
  std::vector<std::string> domains_;
};

struct SmtpLimits {
  /// Largest message (bytes of DATA after dot-unstuffing) accepted; SIZE advertises it.
  size_t max_message_bytes = 25 * 1024 * 1024;
  /// Accepted recipients per transaction; past it 452 4.5.3.
  size_t max_recipients = 100;
  /// Longest command line (RFC 5321 says 512; longer ones are refused and the rest discarded).
  /// Lines inside DATA have no limit of their own: a message within max_message_bytes is never
  /// refused for one long line (Postfix splits such lines and delivers; the parser cuts an
  /// over-long header field and says so: mime.h, ParseLimits).
  size_t max_command_line = 2048;
  /// Refused commands in a session before it is closed (a client speaking something else).
  int max_errors = 20;
};

/// What the state machine tells its connection to do after a line.
struct SmtpStep {
  std::string reply;       // to write now (may be several lines, CRLF-terminated); may be empty
  bool close = false;      // close after writing
  bool start_tls = false;  // after writing, run the TLS handshake and Reset() the session
  bool deliver = false;    // the message is complete: hand it over (Message(), Envelope())
};

/// The result of handing a message over, for the final reply.
enum class DeliveryOutcome {
  kAccepted,   // published and acknowledged by Kafka (or dropped on purpose: not a lead)
  kTemporary,  // Kafka did not take it: 451 4.3.0, the sender keeps it and retries
  kRejected,   // never acceptable (unusable sender): 554 5.6.0
};

/// The SMTP (RFC 5321) or LMTP (RFC 2033) conversation, without I/O: the connection feeds it
/// lines (without their CRLF) and writes what it answers. Extensions: SIZE, 8BITMIME, SMTPUTF8,
/// PIPELINING, ENHANCEDSTATUSCODES, STARTTLS (when TLS is offered and not yet on).
class SmtpSession {
 public:
  SmtpSession(bool lmtp, std::string hostname, SmtpLimits limits, const RecipientPolicy* policy,
              bool tls_offered);

  /// The 220 greeting.
  std::string Greeting() const;
  /// One line from the client, CRLF removed. `too_long`: a command line exceeded
  /// max_command_line (the connection passes what it kept); never set inside DATA. Inside DATA,
  /// after OnDataFragment, the line is the end of the line those fragments began.
  SmtpStep OnLine(std::string_view line, bool too_long = false);
  /// Inside DATA: the beginning (or a further piece) of a line whose end has not arrived yet, so
  /// that a long line is never held whole by the connection; its end comes with OnLine. The
  /// connection passes pieces of at least two bytes, so that a piece is never the "." that ends
  /// the data. The message stays bounded by max_message_bytes (552 5.3.4 beyond).
  SmtpStep OnDataFragment(std::string_view piece);
  /// The final answer once the message handed over by `deliver` was published or not. LMTP: one
  /// reply per accepted recipient.
  std::string OnDelivered(DeliveryOutcome outcome, std::string_view detail = "");
  /// After STARTTLS: back to the start (the client must EHLO again), TLS now on.
  void ResetAfterTls();

  bool in_data() const { return state_ == State::kData; }
  bool awaiting_delivery() const { return state_ == State::kDelivering; }
  /// Between transactions (nothing accepted and unanswered would be lost by closing).
  bool idle() const { return state_ == State::kGreeted || state_ == State::kStart; }

  const std::string& message() const { return message_; }
  std::string TakeMessage() { return std::move(message_); }
  /// The envelope sender ("" for the null sender <>).
  const std::string& mail_from() const { return mail_from_; }
  const std::vector<std::string>& recipients() const { return recipients_; }
  const std::string& client_name() const { return client_name_; }
  bool tls_active() const { return tls_active_; }

  /// Counters for the metrics (read by the connection after each step).
  struct Stats {
    uint64_t recipients_refused = 0;   // 550 5.1.1: not ours (relay attempts included)
    uint64_t too_large = 0;            // 552 5.3.4
    uint64_t too_many_recipients = 0;  // 452 4.5.3
    uint64_t syntax_errors = 0;        // 500/501/503/555
  };
  const Stats& stats() const { return stats_; }

 private:
  enum class State { kStart, kGreeted, kMail, kRcpt, kData, kDelivering };
  SmtpStep OnCommand(std::string_view line);
  SmtpStep OnDataLine(std::string_view line);
  /// Appends DATA bytes, dot-unstuffed at a line's start; past the size limit the message is
  /// dropped and only read on to its final ".".
  void AppendData(std::string_view bytes, bool line_end);
  SmtpStep Error(std::string reply);
  std::string Ehlo(std::string_view verb, std::string_view argument) const;
  void ResetTransaction();

  const bool lmtp_;
  const std::string hostname_;
  const SmtpLimits limits_;
  const RecipientPolicy* policy_;
  const bool tls_offered_;
  bool tls_active_ = false;
  State state_ = State::kStart;
  std::string client_name_;
  std::string mail_from_;
  std::vector<std::string> recipients_;
  std::string message_;
  bool message_too_large_ = false;
  /// Inside DATA: the pieces of a line given so far by OnDataFragment await its end.
  bool mid_line_ = false;
  int errors_ = 0;
  Stats stats_;
};

/// Parses "<path> PARAM=VALUE …" after "MAIL FROM:" / "RCPT TO:". The path without its angle
/// brackets ("" for <>); parameters upper-cased names. std::nullopt on a syntax error.
struct SmtpPath {
  std::string address;
  std::vector<std::pair<std::string, std::string>> parameters;
};
std::optional<SmtpPath> ParseSmtpPath(std::string_view text);

}  // namespace leadflow::email
