#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "email-ingest/smtp_session.h"
#include "metrics/metrics.h"

namespace leadflow::email {

struct SmtpServerOptions {
  std::string address = "127.0.0.1";
  int port = 2525;  // 0 picks a free one (port() tells which)
  bool lmtp = false;
  std::string hostname = "localhost";  // in the greeting and EHLO answer
  SmtpLimits limits;
  /// Time a client has to send each command (RFC 5321 §4.5.3.2 suggests 5 minutes).
  std::chrono::milliseconds command_timeout{300000};
  /// Time between two reads inside DATA (RFC 5321 suggests 3 minutes).
  std::chrono::milliseconds data_timeout{180000};
  /// Open connections at most; more are answered 421 4.7.0 and closed.
  size_t max_connections = 256;
  int threads = 2;
  /// PEM certificate chain and key: STARTTLS is offered when both are set.
  std::string tls_certificate_file;
  std::string tls_key_file;
};

/// What the connection knows about a complete message.
struct ReceivedMessage {
  std::string raw;
  std::string mail_from;  // "" for <>
  std::vector<std::string> recipients;
  std::string client_ip;
  std::string client_name;  // EHLO argument
  bool tls = false;
};

/// An SMTP or LMTP listener (standalone Asio, OpenSSL for STARTTLS). Each complete message is
/// handed to `deliver`, whose callback (any thread, exactly once) decides the final answer: the
/// client is answered 250 only once that callback said kAccepted.
class SmtpServer {
 public:
  using Deliver = std::function<void(ReceivedMessage message,
                                     std::function<void(DeliveryOutcome, std::string)> done)>;
  SmtpServer(SmtpServerOptions options, RecipientPolicy policy, Deliver deliver,
             metrics::Registry* registry);
  ~SmtpServer();
  SmtpServer(const SmtpServer&) = delete;
  SmtpServer& operator=(const SmtpServer&) = delete;

  /// Binds and starts serving; an error when the address cannot be bound or TLS files are bad.
  absl::Status Start();
  int port() const { return port_; }
  /// Stops accepting; idle connections are told 421 and closed; a transaction in progress may
  /// finish (and be answered) within `grace`; then every connection is closed.
  void Stop(std::chrono::milliseconds grace);
  size_t active_connections() const { return active_.load(); }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::atomic<size_t> active_{0};
};

}  // namespace leadflow::email
