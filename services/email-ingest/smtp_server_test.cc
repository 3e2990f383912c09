// The SMTP listener's connection layer over loopback: pipelining, line limits, the command
// timeout, the connection cap, and the final answer waiting for the delivery callback.

#include "email-ingest/smtp_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace leadflow::email {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

/// A raw client: writes bytes, reads until a reply line with `code` + ' ' or the socket closes.
class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      throw std::runtime_error("connect failed");
    }
  }
  ~Client() { close(fd_); }
  void Write(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }
  /// Reads until the text read so far contains `until` (or the peer closed, or 20 s passed).
  std::string ReadUntil(const std::string& until) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (buffer_.find(until) == std::string::npos && !closed_ &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
    std::string text = std::move(buffer_);
    buffer_.clear();
    return text;
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  std::string buffer_;
  bool closed_ = false;
};

class SmtpServerTest : public ::testing::Test {
 protected:
  void StartServer(SmtpServerOptions options) {
    options.port = 0;
    options.hostname = "mx.test";
    server_ = std::make_unique<SmtpServer>(
        options, RecipientPolicy::Parse("acme.test"),
        [this](ReceivedMessage message, std::function<void(DeliveryOutcome, std::string)> done) {
          std::lock_guard lock(mutex_);
          received_.push_back(std::move(message));
          pending_.push_back(std::move(done));
          changed_.notify_all();
        },
        &registry_);
    ASSERT_TRUE(server_->Start().ok());
  }
  /// Answers the oldest delivery waiting (from the test thread, as Kafka's thread would).
  void AnswerDelivery(DeliveryOutcome outcome) {
    std::function<void(DeliveryOutcome, std::string)> done;
    {
      std::unique_lock lock(mutex_);
      ASSERT_TRUE(
          changed_.wait_for(lock, std::chrono::seconds(20), [&] { return !pending_.empty(); }));
      done = std::move(pending_.front());
      pending_.erase(pending_.begin());
    }
    done(outcome, "");
  }
  void TearDown() override {
    if (server_) server_->Stop(std::chrono::milliseconds(100));
  }

  metrics::Registry registry_;
  std::unique_ptr<SmtpServer> server_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ReceivedMessage> received_;
  std::vector<std::function<void(DeliveryOutcome, std::string)>> pending_;
};

// Protects: a whole pipelined transaction in one write is answered in order, and the final
// answer waits for the delivery: nothing after "354" until the callback ran, then 250.
TEST_F(SmtpServerTest, PipelinedTransactionWaitsForDelivery) {
  StartServer({});
  Client client(server_->port());
  EXPECT_THAT(client.ReadUntil("\r\n"), StartsWith("220 mx.test ESMTP"));
  client.Write("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@acme.test>\r\nDATA\r\n");
  std::string replies = client.ReadUntil("354 ");
  EXPECT_THAT(replies,
              HasSubstr("250 ENHANCEDSTATUSCODES\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 "));
  client.Write("Subject: x\r\n\r\n..dot\r\n.\r\nNOOP\r\n");
  {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(
        changed_.wait_for(lock, std::chrono::seconds(20), [&] { return !pending_.empty(); }));
    EXPECT_EQ(received_[0].raw, "Subject: x\r\n\r\n.dot\r\n");
    EXPECT_EQ(received_[0].recipients, std::vector<std::string>{"x@acme.test"});
    EXPECT_EQ(received_[0].client_ip, "127.0.0.1");
  }
  AnswerDelivery(DeliveryOutcome::kTemporary);
  std::string after = client.ReadUntil("250 2.0.0 Ok\r\n");
  EXPECT_EQ(after, "451 4.3.0 Temporary failure, please try again later\r\n250 2.0.0 Ok\r\n");
}

// Protects: an over-long command line is answered 500 5.5.2 and the connection goes on with the
// next line (the rest of the long one is discarded, not read as commands).
TEST_F(SmtpServerTest, OverlongCommandLine) {
  SmtpServerOptions options;
  options.limits.max_command_line = 512;
  StartServer(options);
  Client client(server_->port());
  client.ReadUntil("\r\n");
  // Whole in one read.
  client.Write("NOOP " + std::string(2000, 'a') + "QUIT\r\nNOOP\r\n");
  std::string replies = client.ReadUntil("250 2.0.0 Ok\r\n");
  EXPECT_EQ(replies, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
  // Refused before its end arrived: the end ("QUIT") is still part of the long line.
  client.Write("NOOP " + std::string(2000, 'a'));
  EXPECT_EQ(client.ReadUntil("\r\n"), "500 5.5.2 Line too long\r\n");
  client.Write("QUIT\r\nNOOP\r\n");
  EXPECT_EQ(client.ReadUntil("250 2.0.0 Ok\r\n"), "250 2.0.0 Ok\r\n");
  EXPECT_FALSE(client.closed());
}

// Protects: inside DATA a message within the size limit is never refused for one long line (M14:
// a 300 KiB one-line header used to be answered 500 5.5.2 and bounced by the sending server); the
// line reaches the delivery whole, in whatever pieces it arrived, and a message past the size
// limit is still 552 5.3.4.
TEST_F(SmtpServerTest, LongDataLineIsDelivered) {
  SmtpServerOptions options;
  options.limits.max_message_bytes = 1024 * 1024;
  StartServer(options);
  Client client(server_->port());
  client.ReadUntil("\r\n");
  client.Write("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@acme.test>\r\nDATA\r\n");
  client.ReadUntil("354 ");
  std::string value;
  for (int i = 0; value.size() < 300 * 1024; ++i) value += "r" + std::to_string(i) + "@b.example, ";
  const std::string header = "To: " + value + "x@acme.test";
  // In several writes, one ending between the CR and the LF of the long line.
  client.Write(header.substr(0, 100000));
  client.Write(header.substr(100000) + "\r");
  client.Write("\nSubject: long\r\n\r\nbody\r\n.\r\n");
  {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(
        changed_.wait_for(lock, std::chrono::seconds(20), [&] { return !pending_.empty(); }));
    EXPECT_EQ(received_[0].raw, header + "\r\nSubject: long\r\n\r\nbody\r\n");
  }
  AnswerDelivery(DeliveryOutcome::kAccepted);
  EXPECT_EQ(client.ReadUntil("\r\n"), "250 2.0.0 Ok: accepted\r\n");

  client.Write("MAIL FROM:<a@example.org>\r\nRCPT TO:<x@acme.test>\r\nDATA\r\n");
  client.ReadUntil("354 ");
  client.Write("X-Big: " + std::string(2 * 1024 * 1024, 'z') + "\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(client.ReadUntil("\r\n"),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_.size(), 1u);
}

// Protects: a client silent past the command timeout is told 421 4.4.2 and disconnected.
TEST_F(SmtpServerTest, CommandTimeout) {
  SmtpServerOptions options;
  options.command_timeout = std::chrono::milliseconds(200);
  StartServer(options);
  Client client(server_->port());
  client.ReadUntil("\r\n");
  EXPECT_THAT(client.ReadUntil("\r\n"), StartsWith("421 4.4.2"));
  EXPECT_EQ(client.ReadUntil("never"), "");
  EXPECT_TRUE(client.closed());
  EXPECT_THAT(registry_.Render(), HasSubstr("smtp_timeouts_total{phase=\"command\"} 1"));
}

// Protects: past the connection cap a new connection is answered 421 4.7.0 and closed; once one
// closes, new connections are served again.
TEST_F(SmtpServerTest, ConnectionCap) {
  SmtpServerOptions options;
  options.max_connections = 2;
  StartServer(options);
  auto first = std::make_unique<Client>(server_->port());
  Client second(server_->port());
  EXPECT_THAT(first->ReadUntil("\r\n"), StartsWith("220 "));
  EXPECT_THAT(second.ReadUntil("\r\n"), StartsWith("220 "));
  Client third(server_->port());
  EXPECT_THAT(third.ReadUntil("\r\n"), StartsWith("421 4.7.0"));
  EXPECT_EQ(third.ReadUntil("never"), "");
  EXPECT_TRUE(third.closed());
  first->Write("QUIT\r\n");
  first->ReadUntil("221");
  first.reset();
  ASSERT_TRUE([&] {
    for (int i = 0; i < 200 && server_->active_connections() > 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return server_->active_connections() == 1;
  }());
  Client fourth(server_->port());
  EXPECT_THAT(fourth.ReadUntil("\r\n"), StartsWith("220 "));
  EXPECT_THAT(registry_.Render(), HasSubstr("smtp_connections_refused_total 1"));
}

// Protects: on Stop an idle session is told 421 and closed, and a message waiting for its
// delivery is still answered before the connection closes.
TEST_F(SmtpServerTest, StopAnswersTransactionInFlight) {
  StartServer({});
  Client idle(server_->port());
  Client busy(server_->port());
  idle.ReadUntil("\r\n");
  busy.ReadUntil("\r\n");
  busy.Write("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@acme.test>\r\nDATA\r\n");
  busy.ReadUntil("354 ");
  busy.Write("hi\r\n.\r\n");
  {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(
        changed_.wait_for(lock, std::chrono::seconds(20), [&] { return !pending_.empty(); }));
  }
  std::thread stopper([&] { server_->Stop(std::chrono::seconds(20)); });
  EXPECT_THAT(idle.ReadUntil("\r\n"), StartsWith("421 4.3.2"));
  AnswerDelivery(DeliveryOutcome::kAccepted);
  EXPECT_THAT(busy.ReadUntil("421"), StartsWith("250 2.0.0 Ok: accepted\r\n421 4.3.2"));
  stopper.join();
}

}  // namespace
}  // namespace leadflow::email
