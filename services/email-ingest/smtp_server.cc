#include "email-ingest/smtp_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <optional>

namespace leadflow::email {

namespace {
using Tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
/// Inside DATA, the part of a line without its end yet held by a connection at most (past it,
/// the bytes go to the session's message): with the read buffer, a connection's input is
/// bounded by about 80 KiB whatever the line length.
constexpr size_t kDataPieceBytes = 64 * 1024;
}  // namespace

class Connection;

struct SmtpServer::Impl {
  SmtpServerOptions options;
  RecipientPolicy policy;
  Deliver deliver;
  std::atomic<size_t>* active = nullptr;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  Tcp::acceptor acceptor{io};
  std::optional<asio::ssl::context> tls;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::mutex connections_mutex;
  std::list<std::weak_ptr<Connection>> connections;

  metrics::Counter* accepted_connections;
  metrics::Counter* refused_connections;
  metrics::Family<metrics::Counter>* timeouts;
  metrics::Family<metrics::Counter>* rejections;
  metrics::Family<metrics::Counter>* tls_failures;

  void Accept();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(SmtpServer::Impl* server, Tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        strand_(asio::make_strand(server->io)),
        timer_(server->io),
        session_(server->options.lmtp, server->options.hostname, server->options.limits,
                 &server->policy, server->tls.has_value()) {
    asio::error_code error;
    auto endpoint = socket_.remote_endpoint(error);
    if (!error) client_ip_ = endpoint.address().to_string();
  }
  ~Connection() { server_->active->fetch_sub(1); }

  void Start() {
    asio::dispatch(strand_, [self = shared_from_this()] {
      self->out_ = self->session_.Greeting();
      self->Pump();
    });
  }

  /// Stop requested: an idle connection is told 421 now; a transaction in progress finishes.
  void Shutdown() {
    asio::dispatch(strand_, [self = shared_from_this()] {
      self->shutting_down_ = true;
      if (self->reading_ && self->session_.idle()) {
        asio::error_code ignored;
        self->socket_.cancel(ignored);
      }
    });
  }

  void ForceClose() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->Close(); });
  }

 private:
  size_t LineLimit() const { return server_->options.limits.max_command_line; }

  void Step(std::string_view line, bool too_long, bool piece = false) {
    SmtpSession::Stats before = session_.stats();
    SmtpStep step = piece ? session_.OnDataFragment(line) : session_.OnLine(line, too_long);
    const SmtpSession::Stats& after = session_.stats();
    auto count = [this](uint64_t b, uint64_t a, const char* reason) {
      if (a > b) server_->rejections->WithLabels({reason}).Increment(static_cast<double>(a - b));
    };
    count(before.recipients_refused, after.recipients_refused, "recipient_not_ours");
    count(before.too_large, after.too_large, "too_large");
    count(before.too_many_recipients, after.too_many_recipients, "too_many_recipients");
    count(before.syntax_errors, after.syntax_errors, "protocol");
    out_ += step.reply;
    if (step.close) close_after_write_ = true;
    if (step.start_tls) tls_after_write_ = true;
    if (step.deliver) StartDelivery();
  }

  /// Feeds the complete lines read so far to the session, until it waits for a delivery or
  /// the connection is to close or turn to TLS.
  void ProcessBuffered() {
    while (!session_.awaiting_delivery() && !close_after_write_ && !tls_after_write_) {
      size_t newline = in_.find('\n', in_offset_);
      if (discarding_) {
        // The rest of an over-long line: dropped up to its end.
        if (newline == std::string::npos) {
          in_.clear();
          in_offset_ = 0;
          return;
        }
        in_offset_ = newline + 1;
        discarding_ = false;
        continue;
      }
      if (newline == std::string::npos) {
        if (session_.in_data()) {
          // A long line inside DATA: handed on in pieces, so that the connection holds at most
          // kDataPieceBytes of it (and the message its size limit). The last byte stays: it may
          // be the CR of the line's CRLF.
          const size_t pending = in_.size() - in_offset_;
          if (pending > kDataPieceBytes) {
            Step(std::string_view(in_.data() + in_offset_, pending - 1), /*too_long=*/false,
                 /*piece=*/true);
            in_.erase(0, in_.size() - 1);
            in_offset_ = 0;
          }
          break;
        }
        if (in_.size() - in_offset_ > LineLimit()) {
          std::string_view kept(in_.data() + in_offset_, LineLimit());
          Step(kept, /*too_long=*/true);
          in_.clear();
          in_offset_ = 0;
          discarding_ = true;
        }
        break;
      }
      std::string_view line(in_.data() + in_offset_, newline - in_offset_);
      in_offset_ = newline + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      bool too_long = !session_.in_data() && line.size() > LineLimit();
      if (too_long) line = line.substr(0, LineLimit());
      Step(line, too_long);
    }
    if (in_offset_ > 0 && in_offset_ >= in_.size() / 2) {
      in_.erase(0, in_offset_);
      in_offset_ = 0;
    }
  }

  void StartDelivery() {
    ReceivedMessage message{.raw = session_.TakeMessage(),
                            .mail_from = session_.mail_from(),
                            .recipients = session_.recipients(),
                            .client_ip = client_ip_,
                            .client_name = session_.client_name(),
                            .tls = session_.tls_active()};
    server_->deliver(std::move(message),
                     [self = shared_from_this()](DeliveryOutcome outcome, std::string detail) {
                       asio::post(self->strand_, [self, outcome, detail = std::move(detail)] {
                         self->out_ += self->session_.OnDelivered(outcome, detail);
                         self->Pump();
                       });
                     });
  }

  void Pump() {
    if (closed_) return;
    if (!session_.awaiting_delivery() && !tls_after_write_ && !close_after_write_) {
      ProcessBuffered();
    }
    if (writing_) return;
    if (!out_.empty()) {
      StartWrite();
      return;
    }
    if (close_after_write_) {
      Close();
      return;
    }
    if (tls_after_write_) {
      tls_after_write_ = false;
      StartHandshake();
      return;
    }
    if (session_.awaiting_delivery()) return;  // the delivery callback pumps again
    if (shutting_down_ && session_.idle()) {
      out_ = "421 4.3.2 Service shutting down, try again later\r\n";
      close_after_write_ = true;
      StartWrite();
      return;
    }
    if (!reading_) StartRead();
  }

  void StartRead() {
    reading_ = true;
    timed_out_ = false;
    timer_.expires_after(session_.in_data() ? server_->options.data_timeout
                                            : server_->options.command_timeout);
    timer_.async_wait(
        asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& error) {
          if (error || !self->reading_) return;
          self->timed_out_ = true;
          asio::error_code ignored;
          self->socket_.cancel(ignored);
        }));
    auto on_read = asio::bind_executor(
        strand_, [self = shared_from_this()](const asio::error_code& error, size_t bytes) {
          self->OnRead(error, bytes);
        });
    if (tls_) {
      tls_->async_read_some(asio::buffer(chunk_), std::move(on_read));
    } else {
      socket_.async_read_some(asio::buffer(chunk_), std::move(on_read));
    }
  }

  void OnRead(const asio::error_code& error, size_t bytes) {
    reading_ = false;
    timer_.cancel();
    if (error) {
      if (timed_out_) {
        server_->timeouts->WithLabels({session_.in_data() ? "data" : "command"}).Increment();
        out_ = "421 4.4.2 Timeout exceeded, closing connection\r\n";
        close_after_write_ = true;
        Pump();
        return;
      }
      if (error == asio::error::operation_aborted && shutting_down_ && !closed_) {
        Pump();  // idle and stopping: 421 and close
        return;
      }
      Close();  // the client went away (a message not ended by "." is not accepted)
      return;
    }
    in_.append(chunk_.data(), bytes);
    Pump();
  }

  void StartWrite() {
    writing_ = true;
    pending_write_ = std::move(out_);
    out_.clear();
    auto on_write = asio::bind_executor(
        strand_, [self = shared_from_this()](const asio::error_code& error, size_t) {
          self->writing_ = false;
          if (error) {
            self->Close();
            return;
          }
          self->Pump();
        });
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(pending_write_), std::move(on_write));
    } else {
      asio::async_write(socket_, asio::buffer(pending_write_), std::move(on_write));
    }
  }

  void StartHandshake() {
    tls_.emplace(socket_, *server_->tls);
    // Anything pipelined after STARTTLS came in plaintext: never acted upon (RFC 3207 §4.2).
    in_.clear();
    in_offset_ = 0;
    timer_.expires_after(server_->options.command_timeout);
    timer_.async_wait(
        asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& error) {
          if (error) return;
          asio::error_code ignored;
          self->socket_.cancel(ignored);
        }));
    tls_->async_handshake(
        asio::ssl::stream_base::server,
        asio::bind_executor(strand_, [self = shared_from_this()](const asio::error_code& error) {
          self->timer_.cancel();
          if (error) {
            self->server_->tls_failures->WithLabels({"handshake"}).Increment();
            self->Close();
            return;
          }
          self->session_.ResetAfterTls();
          self->Pump();
        }));
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    asio::error_code ignored;
    socket_.shutdown(Tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  SmtpServer::Impl* server_;
  Tcp::socket socket_;
  Strand strand_;
  asio::steady_timer timer_;
  std::optional<asio::ssl::stream<Tcp::socket&>> tls_;
  SmtpSession session_;
  std::string client_ip_;
  std::array<char, 16384> chunk_;
  std::string in_;
  size_t in_offset_ = 0;
  std::string out_;
  std::string pending_write_;
  bool reading_ = false;
  bool writing_ = false;
  bool timed_out_ = false;
  bool discarding_ = false;
  bool close_after_write_ = false;
  bool tls_after_write_ = false;
  bool shutting_down_ = false;
  bool closed_ = false;
};

void SmtpServer::Impl::Accept() {
  acceptor.async_accept(
      asio::make_strand(io), [this](const asio::error_code& error, Tcp::socket socket) {
        if (error) {
          if (error == asio::error::operation_aborted || stopping) return;
          spdlog::warn("smtp: accept failed: {}", error.message());
          Accept();
          return;
        }
        if (stopping) return;
        if (active->load() >= options.max_connections) {
          refused_connections->Increment();
          // Told why, without reading anything; the socket closes when the write is done.
          auto held = std::make_shared<Tcp::socket>(std::move(socket));
          static const std::string kBusy = "421 4.7.0 Too many connections, try again later\r\n";
          asio::async_write(*held, asio::buffer(kBusy), [held](const asio::error_code&, size_t) {
            asio::error_code ignored;
            held->close(ignored);
          });
          Accept();
          return;
        }
        active->fetch_add(1);
        accepted_connections->Increment();
        auto connection = std::make_shared<Connection>(this, std::move(socket));
        {
          std::lock_guard lock(connections_mutex);
          connections.remove_if([](const std::weak_ptr<Connection>& c) { return c.expired(); });
          connections.push_back(connection);
        }
        connection->Start();
        Accept();
      });
}

SmtpServer::SmtpServer(SmtpServerOptions options, RecipientPolicy policy, Deliver deliver,
                       metrics::Registry* registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->policy = std::move(policy);
  impl_->deliver = std::move(deliver);
  impl_->active = &active_;
  std::string prefix = impl_->options.lmtp ? "lmtp" : "smtp";
  impl_->accepted_connections =
      &registry->AddCounter(prefix + "_connections_total", "Connections accepted.").WithLabels({});
  impl_->refused_connections =
      &registry
           ->AddCounter(prefix + "_connections_refused_total",
                        "Connections answered 421 because the connection limit was reached.")
           .WithLabels({});
  impl_->timeouts = &registry->AddCounter(
      prefix + "_timeouts_total", "Connections closed for a command or data timeout, by phase.",
      {"phase"});
  impl_->rejections = &registry->AddCounter(
      prefix + "_rejections_total",
      "Commands refused: recipient_not_ours (550 5.1.1), too_large (552 5.3.4), "
      "too_many_recipients (452 4.5.3), protocol (5xx syntax and sequence errors).",
      {"reason"});
  impl_->tls_failures = &registry->AddCounter(prefix + "_tls_failures_total",
                                              "STARTTLS handshakes that failed.", {"stage"});
  registry->AddCallbackGauge(prefix + "_connections_active",
                             "Open connections (bounded by the connection limit).",
                             [this] { return static_cast<double>(active_.load()); });
}

SmtpServer::~SmtpServer() { Stop(std::chrono::milliseconds(0)); }

absl::Status SmtpServer::Start() {
  Impl& impl = *impl_;
  if (!impl.options.tls_certificate_file.empty() || !impl.options.tls_key_file.empty()) {
    try {
      impl.tls.emplace(asio::ssl::context::tls_server);
      impl.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
      impl.tls->use_certificate_chain_file(impl.options.tls_certificate_file);
      impl.tls->use_private_key_file(impl.options.tls_key_file, asio::ssl::context::pem);
    } catch (const std::exception& error) {
      impl.tls.reset();
      return absl::InvalidArgumentError(std::string("TLS certificate or key: ") + error.what());
    }
  }
  asio::error_code error;
  auto address = asio::ip::make_address(impl.options.address, error);
  if (error)
    return absl::InvalidArgumentError("address " + impl.options.address + ": " + error.message());
  Tcp::endpoint endpoint(address, static_cast<unsigned short>(impl.options.port));
  impl.acceptor.open(endpoint.protocol(), error);
  if (!error) impl.acceptor.set_option(Tcp::acceptor::reuse_address(true), error);
  if (!error) impl.acceptor.bind(endpoint, error);
  if (!error) impl.acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError("listen on " + impl.options.address + ":" +
                                  std::to_string(impl.options.port) + ": " + error.message());
  }
  port_ = impl.acceptor.local_endpoint().port();
  impl.work.emplace(impl.io.get_executor());
  impl.Accept();
  for (int i = 0; i < std::max(1, impl.options.threads); ++i) {
    impl.threads.emplace_back([&impl] { impl.io.run(); });
  }
  spdlog::info("{}: listening on {}:{}{}", impl.options.lmtp ? "lmtp" : "smtp",
               impl.options.address, port_, impl.tls ? " (STARTTLS offered)" : "");
  return absl::OkStatus();
}

void SmtpServer::Stop(std::chrono::milliseconds grace) {
  Impl& impl = *impl_;
  if (impl.stopping.exchange(true)) {
    return;
  }
  if (impl.threads.empty()) return;
  asio::post(impl.io, [&impl] {
    asio::error_code ignored;
    impl.acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(impl.connections_mutex);
    for (auto& weak : impl.connections) {
      if (auto connection = weak.lock()) open.push_back(std::move(connection));
    }
  }
  for (auto& connection : open) connection->Shutdown();
  open.clear();
  // Transactions in progress are answered (their delivery is bounded by Kafka's timeout).
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (active_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard lock(impl.connections_mutex);
    for (auto& weak : impl.connections) {
      if (auto connection = weak.lock()) connection->ForceClose();
    }
  }
  impl.work.reset();
  auto close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (active_.load() > 0 && std::chrono::steady_clock::now() < close_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  impl.io.stop();
  for (auto& thread : impl.threads) thread.join();
  impl.threads.clear();
}

}  // namespace leadflow::email
