// email-ingest seen from outside: the built binary, real clients (Python's smtplib over SMTP
// and LMTP), the Kafka protocol (librdkafka's mock cluster in this process, so that the broker
// can be made to fail produce requests), events read back from leadflow.inbound.v1.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "ingest/event_id.h"
#include "ingest/signature.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "testing/testing.h"

namespace leadflow {
namespace {

using events::v1::InboundEvent;
using ::testing::HasSubstr;
using testing::ShellQuote;

constexpr int kPartitions = 2;

std::string SourceDir() {
  // tests/e2e/ beside this file, found from the build tree's CMakeCache.
  std::ifstream cache(testing::BuildDir() + "/CMakeCache.txt");
  std::string line;
  while (std::getline(cache, line)) {
    if (line.rfind("leadflow_SOURCE_DIR:STATIC=", 0) == 0) return line.substr(27);
  }
  throw std::runtime_error("leadflow_SOURCE_DIR not in CMakeCache.txt");
}

/// The built email-ingest on free ports.
class EmailIngest {
 public:
  EmailIngest(const std::string& brokers, std::map<std::string, std::string> extra = {}) {
    smtp_port_ = testing::FreePort();
    lmtp_port_ = testing::FreePort();
    ops_port_ = testing::FreePort();
    http_port_ = testing::FreePort();
    std::map<std::string, std::string> env = {
        {"EMAIL_KAFKA_BROKERS", brokers},
        {"EMAIL_RECIPIENTS", "sales@acme.test,support.acme.test"},
        {"EMAIL_SMTP_PORT", std::to_string(smtp_port_)},
        {"EMAIL_LMTP_ENABLED", "true"},
        {"EMAIL_LMTP_PORT", std::to_string(lmtp_port_)},
        {"EMAIL_HTTP_PORT", std::to_string(http_port_)},
        {"EMAIL_MAILGUN_SIGNING_KEY", "key-mailgun-test"},
        {"EMAIL_POSTMARK_BASIC_AUTH", "postmark:pm-secret"},
        {"EMAIL_SENDGRID_BASIC_AUTH", "sendgrid:sg-secret"},
        {"EMAIL_OPS_PORT", std::to_string(ops_port_)},
        {"EMAIL_HOSTNAME", "mx.acme.test"},
        {"EMAIL_DELIVERY_TIMEOUT_MS", "1500"},
        {"LOG_LEVEL", "debug"}};
    for (auto& [name, value] : extra) env[name] = value;
    process_ = std::make_unique<testing::Process>(
        std::vector<std::string>{testing::BuildDir() + "/services/email-ingest/email-ingest"}, env,
        "email-ingest");
    if (!testing::WaitFor(
            [&] {
              return Metrics().find("smtp_connections_total") != std::string::npos ||
                     !process_->Running();
            },
            std::chrono::seconds(30)) ||
        !process_->Running()) {
      throw std::runtime_error("email-ingest did not start: " + process_->Log());
    }
  }
  std::string Metrics() const {
    return testing::Shell("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(ops_port_) +
                          "/metrics");
  }
  double Metric(const std::string& series) const {
    return testing::MetricValue(Metrics(), series).value_or(0);
  }
  /// Sends `message` with smtplib; the server's answers as JSON (see email_client.py).
  nlohmann::json Send(const std::string& message, const std::string& mail_from,
                      const std::vector<std::string>& recipients, bool lmtp = false,
                      const std::string& extra_flags = "") const {
    std::string file = testing::BuildDir() + "/test-logs/" + testing::UniqueName("mail") + ".eml";
    std::ofstream(file, std::ios::binary) << message;
    std::string command = "python3 " + ShellQuote(SourceDir() + "/tests/e2e/email_client.py") +
                          " --port " + std::to_string(lmtp ? lmtp_port_ : smtp_port_) +
                          (lmtp ? " --lmtp" : "") + " " + extra_flags + " --mail-from " +
                          ShellQuote(mail_from);
    for (const std::string& recipient : recipients) command += " --rcpt " + ShellQuote(recipient);
    std::string output = testing::Shell(command + " " + ShellQuote(file));
    std::filesystem::remove(file);
    auto json = nlohmann::json::parse(output, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) throw std::runtime_error("email_client.py said: " + output);
    return json;
  }
  testing::Process& process() { return *process_; }
  int smtp_port() const { return smtp_port_; }
  /// curl with `args` to the webhook port; the status and the body.
  std::pair<int, nlohmann::json> Curl(const std::string& path, const std::string& args) const {
    std::string output =
        testing::Shell("curl -s -H 'Expect:' --max-time 30 -w '\\n%{http_code}' " + args + " " +
                       ShellQuote("http://127.0.0.1:" + std::to_string(http_port_) + path));
    size_t last = output.rfind('\n');
    int status = last == std::string::npos ? 0 : std::atoi(output.c_str() + last + 1);
    return {status, nlohmann::json::parse(output.substr(0, last == std::string::npos ? 0 : last),
                                          nullptr, false)};
  }

 private:
  std::unique_ptr<testing::Process> process_;
  int smtp_port_ = 0;
  int lmtp_port_ = 0;
  int ops_port_ = 0;
  int http_port_ = 0;
};

std::string Message(const std::string& message_id, const std::string& from,
                    const std::string& extra_headers = "", const std::string& body = "Bonjour") {
  return "Message-ID: <" + message_id + ">\r\nFrom: " + from +
         "\r\nTo: sales@acme.test\r\nSubject: Devis\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n" +
         extra_headers + "\r\n" + body + "\r\n";
}

/// The event id of a message with a Message-ID: with its From address (docs/email-ingest.md).
std::string EmailId(const std::string& message_id, const std::string& from) {
  std::string parts = "message-id;";
  ingest::AppendPart(&parts, message_id);
  ingest::AppendPart(&parts, from);
  return ingest::EventId("email", parts);
}

class EmailE2eTest : public ::testing::Test {
 protected:
  EmailE2eTest() { kafka_.CreateTopic(kafka::kInboundTopic, kPartitions); }

  std::vector<InboundEvent> Events() {
    std::vector<InboundEvent> events;
    for (const kafka::Message& message : testing::ReadTopic(
             kafka_.bootstrap(), kafka::kInboundTopic, kPartitions, std::chrono::seconds(30))) {
      InboundEvent event;
      if (event.ParseFromString(message.value)) events.push_back(std::move(event));
    }
    return events;
  }
  size_t CountEvent(const std::string& event_id) {
    size_t count = 0;
    for (const InboundEvent& event : Events()) count += event.event_id() == event_id;
    return count;
  }

  testing::MockKafka kafka_;
};

// Protects: a first mail over SMTP (smtplib) is answered 250 only once its event is on the
// topic, with what the parser read (sender, mailbox, text, thread headers, provider).
TEST_F(EmailE2eTest, FirstMailOverSmtpReachesKafka) {
  EmailIngest ingest(kafka_.bootstrap());
  std::string message = Message("first-mail@example.org", "Jean Dupont <Jean@Example.org>",
                                "Cc: assistant@example.org\r\nReferences: <old@acme.test>\r\n",
                                "Bonjour, je voudrais un devis pour 3 postes.");
  auto answer = ingest.Send(message, "jean@example.org", {"Sales@acme.test"});
  EXPECT_EQ(answer["ehlo"], 250);
  for (const char* extension :
       {"8bitmime", "enhancedstatuscodes", "pipelining", "size", "smtputf8"}) {
    EXPECT_THAT(answer["extensions"].get<std::vector<std::string>>(),
                ::testing::Contains(extension));
  }
  ASSERT_EQ(answer["data"][0][0], 250) << answer.dump();
  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  const InboundEvent& event = events[0];
  EXPECT_EQ(event.event_id(), EmailId("first-mail@example.org", "jean@example.org"));
  EXPECT_EQ(event.identities(0).value(), "jean@example.org");
  EXPECT_EQ(event.person().first_name(), "Jean");
  EXPECT_EQ(event.email().mailbox(), "sales@acme.test");
  EXPECT_EQ(event.email().provider(), "smtp");
  EXPECT_EQ(event.email().text_body(), "Bonjour, je voudrais un devis pour 3 postes.");
  EXPECT_EQ(event.email().references(0), "old@acme.test");
  EXPECT_EQ(event.email().cc_addresses(0), "assistant@example.org");
  EXPECT_EQ(event.source().client_ip(), "127.0.0.1");
  EXPECT_EQ(ingest.Metric(R"(email_messages_total{channel="smtp",outcome="published"})"), 1);
}

// Protects: LMTP answers once per accepted recipient after DATA, refuses recipients that are not
// ours in RCPT, and publishes one event for the message.
TEST_F(EmailE2eTest, LmtpAnswersPerRecipient) {
  EmailIngest ingest(kafka_.bootstrap());
  auto answer = ingest.Send(Message("lmtp-1@example.org", "anna@example.org"), "anna@example.org",
                            {"sales@acme.test", "stranger@example.net", "help@support.acme.test"},
                            /*lmtp=*/true);
  EXPECT_EQ(answer["rcpt"]["stranger@example.net"][0], 550) << answer.dump();
  ASSERT_EQ(answer["data"].size(), 2u) << answer.dump();
  EXPECT_EQ(answer["data"][0][0], 250);
  EXPECT_THAT(answer["data"][0][1].get<std::string>(), HasSubstr("<sales@acme.test>"));
  EXPECT_EQ(answer["data"][1][0], 250);
  EXPECT_THAT(answer["data"][1][1].get<std::string>(), HasSubstr("<help@support.acme.test>"));
  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].email().provider(), "lmtp");
}

// Protects: an auto-reply and a bounce are taken (250: the sending server must not retry) and
// publish nothing; each is counted with its reason.
TEST_F(EmailE2eTest, AutoReplyAndBounceMakeNoEvent) {
  EmailIngest ingest(kafka_.bootstrap());
  auto autoreply =
      ingest.Send(Message("ooo@example.org", "bob@example.org", "Auto-Submitted: auto-replied\r\n",
                          "I am out of the office."),
                  "bob@example.org", {"sales@acme.test"});
  EXPECT_EQ(autoreply["data"][0][0], 250) << autoreply.dump();
  auto bounce = ingest.Send(
      "From: MAILER-DAEMON@mx.example.org\r\nTo: sales@acme.test\r\nSubject: Undelivered\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n"
      "--R\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--R--\r\n",
      "", {"sales@acme.test"});
  EXPECT_EQ(bounce["data"][0][0], 250) << bounce.dump();
  // A message that is a lead, sent last: once it is on the topic, the two before were decided.
  auto lead = ingest.Send(Message("after@example.org", "carla@example.org"), "carla@example.org",
                          {"sales@acme.test"});
  ASSERT_EQ(lead["data"][0][0], 250);
  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_id(), EmailId("after@example.org", "carla@example.org"));
  EXPECT_EQ(ingest.Metric(R"(email_dropped_total{channel="smtp",reason="auto_submitted"})"), 1);
  // The bounce comes with the null sender <>: the first rule that matches is counted.
  EXPECT_EQ(ingest.Metric(R"(email_dropped_total{channel="smtp",reason="delivery_report"})"), 1);
}

// Protects: never an open relay: a recipient that is not ours is 550 5.1.1 and nothing is
// published.
TEST_F(EmailE2eTest, RelayAttemptRefused) {
  EmailIngest ingest(kafka_.bootstrap());
  auto answer = ingest.Send(Message("relay@example.net", "spammer@example.net"),
                            "spammer@example.net", {"victim@gmail.com"});
  EXPECT_EQ(answer["rcpt"]["victim@gmail.com"][0], 550) << answer.dump();
  EXPECT_THAT(answer["rcpt"]["victim@gmail.com"][1].get<std::string>(), HasSubstr("5.1.1"));
  EXPECT_TRUE(answer["data"].empty());
  EXPECT_EQ(ingest.Metric(R"(smtp_rejections_total{reason="recipient_not_ours"})"), 1);
  EXPECT_TRUE(Events().empty());
}

// Protects: 250 only after Kafka's acknowledgement: while the broker fails every produce
// request the answer is 451 4.3.0 (the sending server keeps the message); the same message
// retried once the broker is back is 250 and ends up on the topic exactly once.
TEST_F(EmailE2eTest, BrokerFailing451ThenRetryIsOneEvent) {
  EmailIngest ingest(kafka_.bootstrap());
  std::string message = Message("retried@example.org", "dora@example.org");
  kafka_.FailProduceRequests();
  auto refused = ingest.Send(message, "dora@example.org", {"sales@acme.test"});
  ASSERT_EQ(refused["data"][0][0], 451) << refused.dump();
  EXPECT_THAT(refused["data"][0][1].get<std::string>(), HasSubstr("4.3.0"));
  // The broker stays down until the producer has given the message up (a sending server
  // retries minutes later). Had it come back sooner, the copy still being retried inside the
  // producer would be written as well: two copies with one event id, applied once by crm-core
  // (docs/email-ingest.md).
  ASSERT_TRUE(testing::WaitFor([&] { return ingest.Metric("email_kafka_in_flight") == 0; },
                               std::chrono::seconds(30)));
  kafka_.RestoreProduceRequests();
  auto retried = ingest.Send(message, "dora@example.org", {"sales@acme.test"});
  ASSERT_EQ(retried["data"][0][0], 250) << retried.dump();
  EXPECT_EQ(CountEvent(EmailId("retried@example.org", "dora@example.org")), 1u);
  EXPECT_GE(ingest.Metric(R"(email_kafka_failures_total{class="retryable"})"), 1);
}

// Protects: STARTTLS with a configured certificate: EHLO offers it, the handshake succeeds, and
// the message sent inside TLS is published.
TEST_F(EmailE2eTest, StartTlsWithCertificate) {
  std::string dir = testing::BuildDir() + "/test-logs/" + testing::UniqueName("tls");
  std::filesystem::create_directories(dir);
  int code = 0;
  testing::Shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mx.acme.test -keyout " + dir +
          "/key.pem -out " + dir + "/cert.pem 2>&1",
      &code);
  ASSERT_EQ(code, 0);
  EmailIngest ingest(kafka_.bootstrap(), {{"EMAIL_TLS_CERT_FILE", dir + "/cert.pem"},
                                          {"EMAIL_TLS_KEY_FILE", dir + "/key.pem"}});
  auto answer = ingest.Send(Message("tls@example.org", "eve@example.org"), "eve@example.org",
                            {"sales@acme.test"}, false, "--starttls");
  EXPECT_THAT(answer["extensions"].get<std::vector<std::string>>(),
              ::testing::Contains("starttls"));
  EXPECT_EQ(answer["starttls"], 220) << answer.dump();
  EXPECT_EQ(answer["data"][0][0], 250) << answer.dump();
  EXPECT_EQ(CountEvent(EmailId("tls@example.org", "eve@example.org")), 1u);
}

// Protects: a message larger than the limit is refused 552 5.3.4, announced (SIZE) or not.
TEST_F(EmailE2eTest, OversizedMessageRefused) {
  EmailIngest ingest(kafka_.bootstrap(), {{"EMAIL_MAX_MESSAGE_BYTES", "2048"}});
  auto answer =
      ingest.Send(Message("big@example.org", "fay@example.org", "", std::string(4000, 'x')),
                  "fay@example.org", {"sales@acme.test"});
  EXPECT_EQ(answer["mail"][0], 552) << answer.dump();
  EXPECT_THAT(answer["mail"][1].get<std::string>(), HasSubstr("5.3.4"));
  EXPECT_TRUE(Events().empty());
}

// Protects: SIGTERM stops email-ingest cleanly (exit 0): idle sessions are told 421.
TEST_F(EmailE2eTest, SigtermStopsCleanly) {
  EmailIngest ingest(kafka_.bootstrap());
  ingest.process().Signal(SIGTERM);
  EXPECT_EQ(ingest.process().Wait(std::chrono::seconds(30)), 0) << ingest.process().Log();
}

/// A bare SMTP client on a socket, for what smtplib cannot do: stop in the middle of DATA.
class RawSmtp {
 public:
  explicit RawSmtp(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      throw std::runtime_error("connect failed");
    }
  }
  ~RawSmtp() { close(fd_); }
  void Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }
  /// Reads until a final reply line ("ddd " ... CRLF) or 30 s; returns what was read.
  std::string Reply() {
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      // Done when the text ends with a whole line whose code is followed by a space.
      if (text.size() >= 6 && text.substr(text.size() - 2) == "\r\n") {
        size_t last = text.rfind("\r\n", text.size() - 3);
        size_t begin = last == std::string::npos ? 0 : last + 2;
        if (text.size() - begin >= 4 && text[begin + 3] == ' ') return text;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) break;
      text.append(chunk, static_cast<size_t>(n));
    }
    return text;
  }

 private:
  int fd_ = -1;
};

// Protects: Kafka becoming unavailable in the middle of DATA: the message is answered 451 4.3.0
// (kept by the sender), the session goes on, and the same message sent again once Kafka is back
// is 250 and one event on the topic.
TEST_F(EmailE2eTest, KafkaUnavailableMidData) {
  EmailIngest ingest(kafka_.bootstrap());
  RawSmtp client(ingest.smtp_port());
  EXPECT_THAT(client.Reply(), ::testing::StartsWith("220 "));
  client.Send("EHLO sender.example\r\n");
  client.Reply();
  const std::string transaction =
      "MAIL FROM:<gina@example.org>\r\nRCPT TO:<sales@acme.test>\r\nDATA\r\n";
  const std::string head = "Message-ID: <mid-data@example.org>\r\nFrom: gina@example.org\r\n";
  const std::string tail = "Subject: Devis\r\n\r\nBonjour\r\n.\r\n";
  client.Send("MAIL FROM:<gina@example.org>\r\n");
  client.Reply();
  client.Send("RCPT TO:<sales@acme.test>\r\n");
  client.Reply();
  client.Send("DATA\r\n");
  EXPECT_THAT(client.Reply(), ::testing::StartsWith("354 "));
  client.Send(head);
  kafka_.FailProduceRequests();
  client.Send(tail);
  EXPECT_THAT(client.Reply(), ::testing::StartsWith("451 4.3.0"));
  ASSERT_TRUE(testing::WaitFor([&] { return ingest.Metric("email_kafka_in_flight") == 0; },
                               std::chrono::seconds(30)));
  kafka_.RestoreProduceRequests();
  client.Send(transaction);
  std::string replies;
  while (replies.find("354 ") == std::string::npos) {
    std::string more = client.Reply();
    if (more.empty()) break;
    replies += more;
  }
  client.Send(head + tail);
  EXPECT_THAT(client.Reply(), ::testing::StartsWith("250 2.0.0"));
  EXPECT_EQ(CountEvent(EmailId("mid-data@example.org", "gina@example.org")), 1u);
}

/// Mailgun's signature fields for now, signed with `key`, as curl -F arguments.
std::string MailgunSignature(const std::string& key, const std::string& token,
                             int64_t timestamp = -1) {
  if (timestamp < 0) {
    timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  }
  std::string ts = std::to_string(timestamp);
  std::string signature =
      ingest::HexEncode(ingest::Hmac(ingest::HmacAlgorithm::kSha256, key, ts + token));
  return "-F timestamp=" + ts + " -F token=" + token + " -F signature=" + signature;
}

// Protects: Mailgun's forward() webhook: unsigned → 401 and forged or stale → 403 with nothing
// published; a signed post → 200 once its event is on the topic; a repeat of it is 200 again
// with nothing published, and its token cannot carry another message (403); the raw-MIME
// variant too.
TEST_F(EmailE2eTest, MailgunSignedOnly) {
  EmailIngest ingest(kafka_.bootstrap());
  const std::string fields =
      "-F sender=paul@example.org -F recipient=sales@acme.test -F 'from=Paul <paul@example.org>' "
      "-F subject=Devis -F 'body-plain=Un devis svp' "
      "-F 'message-headers=[[\"Message-Id\", \"<mg-e2e@example.org>\"], [\"From\", \"Paul "
      "<paul@example.org>\"], [\"Subject\", \"Devis\"]]' "
      "-F 'attachment-1=@" +
      SourceDir() + "/services/email-ingest/testdata/alternative.eml;type=message/rfc822'";
  auto unsigned_post = ingest.Curl("/v1/email/mailgun", fields);
  EXPECT_EQ(unsigned_post.first, 401);
  auto forged = ingest.Curl("/v1/email/mailgun",
                            fields + " " + MailgunSignature("not-the-key", std::string(50, 'a')));
  EXPECT_EQ(forged.first, 403);
  auto stale = ingest.Curl(
      "/v1/email/mailgun",
      fields + " " + MailgunSignature("key-mailgun-test", std::string(50, 'b'), 1700000000));
  EXPECT_EQ(stale.first, 403);
  EXPECT_TRUE(Events().empty());

  std::string signature = MailgunSignature("key-mailgun-test", std::string(50, 'c'));
  auto signed_post = ingest.Curl("/v1/email/mailgun", fields + " " + signature);
  ASSERT_EQ(signed_post.first, 200) << signed_post.second.dump();
  EXPECT_EQ(signed_post.second["event_id"], EmailId("mg-e2e@example.org", "paul@example.org"));
  auto repeated = ingest.Curl("/v1/email/mailgun", fields + " " + signature);
  EXPECT_EQ(repeated.first, 200) << repeated.second.dump();
  EXPECT_EQ(repeated.second["status"], "already_accepted");
  auto replayed =
      ingest.Curl("/v1/email/mailgun", fields + " -F 'stripped-text=another' " + signature);
  EXPECT_EQ(replayed.first, 403);

  auto mime =
      ingest.Curl("/v1/email/mailgun/mime",
                  "-F sender=marie.curie@example.org -F recipient=sales@acme.test -F 'body-mime=<" +
                      SourceDir() + "/services/email-ingest/testdata/alternative.eml' " +
                      MailgunSignature("key-mailgun-test", std::string(50, 'd')));
  ASSERT_EQ(mime.first, 200) << mime.second.dump();

  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 2u);
  for (const InboundEvent& event : events) {
    EXPECT_EQ(event.email().provider(), "mailgun");
    EXPECT_EQ(event.email().mailbox(), "sales@acme.test");
    if (event.email().message_id() == "mg-e2e@example.org") {
      EXPECT_EQ(event.email().text_body(), "Un devis svp");
      ASSERT_EQ(event.email().attachments_size(), 1);
      EXPECT_EQ(event.email().attachments(0).filename(), "alternative.eml");
    } else {
      EXPECT_EQ(event.email().from_address(), "marie.curie@example.org");
      EXPECT_THAT(event.email().text_body(), HasSubstr("Besançon"));
    }
  }
  EXPECT_EQ(ingest.Metric(R"(email_webhook_requests_total{outcome="forged",provider="mailgun"})"),
            1);
  EXPECT_EQ(ingest.Metric(R"(email_webhook_requests_total{outcome="replayed",provider="mailgun"})"),
            1);
  EXPECT_EQ(ingest.Metric(R"(email_webhook_requests_total{outcome="repeated",provider="mailgun"})"),
            1);
}

// Protects: no mail lost when Mailgun retries: a post refused with 503 while Kafka is down is
// taken when Mailgun retries the same request (same token and signature) once Kafka is back, even
// hours later within Mailgun's 8-hour retry schedule; a further repeat is 200 with nothing
// published: exactly one event. Its headers naming no To, the route's recipient is its To.
TEST_F(EmailE2eTest, MailgunRetryAfter503IsTaken) {
  EmailIngest ingest(kafka_.bootstrap());
  const std::string fields =
      "-F sender=rita@example.org -F recipient=sales@acme.test -F 'from=Rita <rita@example.org>' "
      "-F subject=Devis -F 'body-plain=Un devis pour 4 postes' "
      "-F 'message-headers=[[\"Message-Id\", \"<mg-retry@example.org>\"], [\"From\", \"Rita "
      "<rita@example.org>\"], [\"Subject\", \"Devis\"]]' ";
  int64_t first_attempt = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() -
                          (7 * 3600 + 55 * 60);  // Mailgun's last retry: 7 h 55 min later
  std::string signature = MailgunSignature("key-mailgun-test", std::string(50, 'r'), first_attempt);
  kafka_.FailProduceRequests();
  auto refused = ingest.Curl("/v1/email/mailgun", fields + signature);
  ASSERT_EQ(refused.first, 503) << refused.second.dump();
  ASSERT_TRUE(testing::WaitFor([&] { return ingest.Metric("email_kafka_in_flight") == 0; },
                               std::chrono::seconds(30)));
  kafka_.RestoreProduceRequests();
  auto retried = ingest.Curl("/v1/email/mailgun", fields + signature);
  ASSERT_EQ(retried.first, 200) << retried.second.dump();
  EXPECT_EQ(retried.second["status"], "accepted");
  auto repeated = ingest.Curl("/v1/email/mailgun", fields + signature);
  EXPECT_EQ(repeated.first, 200) << repeated.second.dump();
  EXPECT_EQ(CountEvent(EmailId("mg-retry@example.org", "rita@example.org")), 1u);
  // Its message-headers name no To: the route's recipient stands for it (crm-core's reference).
  for (const InboundEvent& event : Events()) {
    ASSERT_EQ(event.email().to_addresses_size(), 1);
    EXPECT_EQ(event.email().to_addresses(0), "sales@acme.test");
    EXPECT_EQ(event.source().reference(), "sales@acme.test");
  }
  EXPECT_EQ(
      ingest.Metric(R"(email_webhook_requests_total{outcome="unavailable",provider="mailgun"})"),
      1);
}

// Protects: the trial's mail that made wrong leads, over SMTP with smtplib: a copy of our own
// mail (From sales@) and an out-of-office reply without Auto-Submitted are taken and make no
// event (counted by reason); two customers of a web-form relay (From no-reply@crm.wix.com,
// Reply-To the customer) are two people; a Gmail forward keeps the forwarded text.
TEST_F(EmailE2eTest, TrialShapes) {
  EmailIngest ingest(kafka_.bootstrap(), {{"EMAIL_RELAY_SENDERS", "crm.wix.com"}});
  auto own = ingest.Send(Message("own@acme.test", "Sales <sales@acme.test>"), "sales@acme.test",
                         {"sales@acme.test"});
  EXPECT_EQ(own["data"][0][0], 250) << own.dump();
  std::string ooo = Message("ooo-subject@example.org", "luc@example.org", "", "I am away.");
  ooo.replace(ooo.find("Subject: Devis"), 14, "Subject: Automatic reply: Devis");
  EXPECT_EQ(ingest.Send(ooo, "luc@example.org", {"sales@acme.test"})["data"][0][0], 250);
  for (const char* customer : {"anna@example.org", "bob@example.net"}) {
    auto answer = ingest.Send(
        Message(std::string("wix-") + customer, "Wix Forms <no-reply@crm.wix.com>",
                std::string("Reply-To: Customer <") + customer + ">\r\n", "Nouveau formulaire"),
        "bounce@wix.com", {"sales@acme.test"});
    EXPECT_EQ(answer["data"][0][0], 250) << answer.dump();
  }
  std::string forward =
      "Message-ID: <fwd-0001@example.org>\r\nFrom: Vendeur <vendeur@example.org>\r\n"
      "To: sales@acme.test\r\nSubject: Fwd: Demande de tarif\r\n\r\n"
      "---------- Forwarded message ---------\r\nFrom: Claire <claire@laposte.net>\r\n"
      "Date: Mon, 30 Nov 2026 at 14:00\r\nSubject: Demande de tarif\r\n\r\n"
      "Quel est votre tarif pour 50 postes ?\r\n";
  EXPECT_EQ(ingest.Send(forward, "vendeur@example.org", {"sales@acme.test"})["data"][0][0], 250);
  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> people;
  for (const InboundEvent& event : events) {
    people.insert(event.identities(0).value());
    if (event.email().message_id() == "fwd-0001@example.org") {
      EXPECT_THAT(event.email().text_body(), HasSubstr("50 postes"));
    } else {
      EXPECT_EQ(event.email().relay_address(), "no-reply@crm.wix.com");
    }
  }
  EXPECT_EQ(people,
            (std::set<std::string>{"anna@example.org", "bob@example.net", "vendeur@example.org"}));
  EXPECT_EQ(ingest.Metric(R"(email_dropped_total{channel="smtp",reason="own_address"})"), 1);
  EXPECT_EQ(ingest.Metric(R"(email_dropped_total{channel="smtp",reason="autoreply_subject"})"), 1);
  EXPECT_EQ(ingest.Metric(R"(email_relayed_total{channel="smtp",why="relay_sender"})"), 2);
}

const char kPostmarkJson[] = R"({
  "FromName": "Postmark Sender", "From": "sender@example.org",
  "FromFull": {"Email": "sender@example.org", "Name": "Postmark Sender", "MailboxHash": ""},
  "To": "\"Sales\" <sales+lead@acme.test>",
  "ToFull": [{"Email": "sales+lead@acme.test", "Name": "Sales", "MailboxHash": "lead"}],
  "Cc": "", "CcFull": [], "ReplyTo": "replies@example.org", "OriginalRecipient": "sales+lead@acme.test",
  "Subject": "Test subject", "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
  "Date": "Fri, 1 Aug 2014 16:45:32 -04:00", "MailboxHash": "lead",
  "TextBody": "This is a test text body.", "HtmlBody": "<html><body><p>This is a test html body.</p></body></html>",
  "StrippedTextReply": "This is the reply text", "Tag": "TestTag",
  "Headers": [{"Name": "X-Header-Test", "Value": ""}, {"Name": "Message-ID", "Value": "<pm-e2e@example.org>"}],
  "Attachments": [{"Name": "test.txt", "Content": "VGhpcyBpcyBhdHRhY2htZW50IGNvbnRlbnRzLCBiYXNlLTY0IGVuY29kZWQu",
                   "ContentType": "text/plain", "ContentLength": 45}]
})";

// Protects: Postmark's inbound JSON: missing or wrong Basic credentials → 401 (never 403, which
// would stop Postmark's retries), nothing published; with them → 200 and the event; an
// auto-reply → 200 and nothing; Kafka failing → 503 (Postmark retries).
TEST_F(EmailE2eTest, PostmarkBasicAuth) {
  EmailIngest ingest(kafka_.bootstrap());
  std::string json_file = testing::BuildDir() + "/test-logs/" + testing::UniqueName("pm") + ".json";
  std::ofstream(json_file) << kPostmarkJson;
  std::string post = "-H 'Content-Type: application/json' --data-binary @" + json_file;
  EXPECT_EQ(ingest.Curl("/v1/email/postmark", post).first, 401);
  EXPECT_EQ(ingest.Curl("/v1/email/postmark", post + " -u postmark:wrong").first, 401);
  EXPECT_TRUE(Events().empty());
  auto good = ingest.Curl("/v1/email/postmark", post + " -u postmark:pm-secret");
  ASSERT_EQ(good.first, 200) << good.second.dump();
  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_id(), EmailId("pm-e2e@example.org", "sender@example.org"));
  EXPECT_EQ(events[0].email().mailbox(), "sales+lead@acme.test");
  EXPECT_EQ(events[0].email().reply_to_address(), "replies@example.org");
  EXPECT_EQ(events[0].email().text_body(), "This is a test text body.");
  EXPECT_EQ(events[0].email().attachments(0).size_bytes(), 45);
  EXPECT_EQ(events[0].email().date().seconds(), 1406925932);

  std::string autoreply = std::string(kPostmarkJson);
  autoreply.replace(autoreply.find("\"X-Header-Test\""), 15, "\"Auto-Submitted\"");
  autoreply.replace(autoreply.find("\"Value\": \"\""), 11, "\"Value\": \"auto-replied\"");
  autoreply.replace(autoreply.find("pm-e2e@"), 7, "pm-ooo@");
  std::ofstream(json_file) << autoreply;
  auto dropped = ingest.Curl("/v1/email/postmark", post + " -u postmark:pm-secret");
  EXPECT_EQ(dropped.first, 200);
  EXPECT_EQ(dropped.second["status"], "not_a_lead");

  EXPECT_EQ(
      ingest
          .Curl("/v1/email/postmark",
                "-H 'Content-Type: application/json' --data-binary '[1]' -u postmark:pm-secret")
          .first,
      403);
  std::string third = std::string(kPostmarkJson);
  third.replace(third.find("pm-e2e@"), 7, "pm-503@");
  std::ofstream(json_file) << third;
  kafka_.FailProduceRequests();
  auto unavailable = ingest.Curl("/v1/email/postmark", post + " -u postmark:pm-secret");
  EXPECT_EQ(unavailable.first, 503);
  ASSERT_TRUE(testing::WaitFor([&] { return ingest.Metric("email_kafka_in_flight") == 0; },
                               std::chrono::seconds(30)));
  kafka_.RestoreProduceRequests();
  EXPECT_EQ(Events().size(), 1u);
  std::filesystem::remove(json_file);
}

// Protects: SendGrid Inbound Parse: Basic auth required (401 otherwise, nothing published); the
// raw `email` field and the parsed fields (text in the charset SendGrid names) both publish.
TEST_F(EmailE2eTest, SendgridRawAndParsed) {
  EmailIngest ingest(kafka_.bootstrap());
  std::string raw =
      "-F 'email=<" + SourceDir() +
      "/services/email-ingest/testdata/latin1_base64.eml' "
      "-F 'envelope={\"to\":[\"contact@acme.test\"],\"from\":\"francois@example.fr\"}'";
  EXPECT_EQ(ingest.Curl("/v1/email/sendgrid", raw).first, 401);
  EXPECT_EQ(ingest.Curl("/v1/email/sendgrid", raw + " -u sendgrid:nope").first, 401);
  EXPECT_TRUE(Events().empty());
  auto raw_post = ingest.Curl("/v1/email/sendgrid", raw + " -u sendgrid:sg-secret");
  ASSERT_EQ(raw_post.first, 200) << raw_post.second.dump();

  std::string dir = testing::BuildDir() + "/test-logs/" + testing::UniqueName("sg");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/headers")
      << "Message-ID: <sg-e2e@example.org>\r\nFrom: Lea <lea@example.org>\r\n"
         "To: sales@acme.test\r\nSubject: =?UTF-8?Q?R=C3=A9union?=\r\n"
         "Content-Type: multipart/alternative; boundary=x\r\n";
  std::ofstream(dir + "/text", std::ios::binary) << "Disponible l'ann\xe9"
                                                    "e prochaine.";
  auto parsed =
      ingest.Curl("/v1/email/sendgrid",
                  "-u sendgrid:sg-secret -F 'headers=<" + dir + "/headers' -F 'text=<" + dir +
                      "/text' -F 'from=Lea <lea@example.org>' -F 'to=sales@acme.test' "
                      "-F 'charsets={\"text\":\"iso-8859-1\",\"subject\":\"UTF-8\"}' "
                      "-F 'envelope={\"to\":[\"sales@acme.test\"],\"from\":\"lea@example.org\"}' "
                      "-F 'attachment1=@" +
                      dir + "/text;filename=notes.txt;type=text/plain'");
  ASSERT_EQ(parsed.first, 200) << parsed.second.dump();
  std::vector<InboundEvent> events = Events();
  ASSERT_EQ(events.size(), 2u);
  for (const InboundEvent& event : events) {
    EXPECT_EQ(event.email().provider(), "sendgrid");
    if (event.email().message_id() == "sg-e2e@example.org") {
      EXPECT_EQ(event.email().subject(), "Réunion");
      EXPECT_EQ(event.email().text_body(), "Disponible l'année prochaine.");
      EXPECT_EQ(event.email().mailbox(), "sales@acme.test");
      ASSERT_EQ(event.email().attachments_size(), 1);
      EXPECT_EQ(event.email().attachments(0).filename(), "notes.txt");
    } else {
      EXPECT_EQ(event.email().from_address(), "francois@example.fr");
      EXPECT_EQ(event.email().mailbox(), "contact@acme.test");
    }
  }
}

// Protects: the new-user pass's parsing findings, through each route with real clients: a
// subject Python folded into padded base64 words (SMTP, smtplib) and a message forwarded as an
// attachment (LMTP) arrive whole; a reply naming 150 unrelated References before the message it
// answers keeps that message (and the root); Mailgun's decoded subject field is the subject;
// Postmark's From without FromFull keeps its display name; SendGrid's windows-1251 Subject in
// the charset `charsets` names, and attachment-info's file name (curl posts).
TEST_F(EmailE2eTest, NewUserPassParsing) {
  EmailIngest ingest(kafka_.bootstrap());
  const std::string corpus = SourceDir() + "/services/email-ingest/testdata/";
  auto read = [&](const std::string& name) {
    std::ifstream in(corpus + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(ingest.Send(read("b_words_russian_folded.eml"), "svetlana@kuz.example",
                        {"sales@acme.test"})["data"][0][0],
            250);
  EXPECT_EQ(ingest.Send(read("forwarded_as_attachment.eml"), "claire2@bernard-conseil.example",
                        {"sales@acme.test"}, /*lmtp=*/true)["data"][0][0],
            250);
  EXPECT_EQ(ingest.Send(read("long_references.eml"), "jean@other.example",
                        {"sales@acme.test"})["data"][0][0],
            250);
  auto mailgun = ingest.Curl(
      "/v1/email/mailgun",
      "-F sender=paul@example.org -F recipient=sales@acme.test -F 'subject=Demande de devis' "
      "-F 'body-plain=Bonjour' "
      "-F 'message-headers=[[\"Message-Id\", \"<mg-subject@example.org>\"], [\"From\", \"Paul "
      "<paul@example.org>\"], [\"Subject\", \"=?utf-8?b?RGVtYW5kZSBkZSA=?=\"]]' " +
          MailgunSignature("key-mailgun-test", std::string(50, 'n')));
  ASSERT_EQ(mailgun.first, 200) << mailgun.second.dump();
  std::string dir = testing::BuildDir() + "/test-logs/" + testing::UniqueName("np");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/pm.json")
      << R"({"From": "\"Zoë O'Brien\" <zoe@obrien.example>", "OriginalRecipient": "sales@acme.test",)"
         R"( "Subject": "Quote", "TextBody": "Hi, a quote please.",)"
         R"( "Headers": [{"Name": "Message-ID", "Value": "<pm-2@obrien.example>"}]})";
  auto postmark = ingest.Curl("/v1/email/postmark",
                              "-u postmark:pm-secret -H 'Content-Type: application/json' "
                              "--data-binary @" +
                                  dir + "/pm.json");
  ASSERT_EQ(postmark.first, 200) << postmark.second.dump();
  std::ofstream(dir + "/pdf") << "%PDF-1.4";
  auto sendgrid = ingest.Curl(
      "/v1/email/sendgrid",
      "-u sendgrid:sg-secret -F 'headers=<" + corpus +
          "sendgrid_headers_windows1251.txt' -F 'text=Bonjour' "
          "--form-string 'charsets={\"subject\":\"windows-1251\",\"text\":\"utf-8\"}' "
          "--form-string 'attachment-info={\"attachment1\":{\"filename\":\"счёт.pdf\"}}' "
          "-F 'attachment1=@" +
          dir +
          "/pdf;filename=schet.pdf;type=application/pdf' "
          "-F 'envelope={\"to\":[\"sales@acme.test\"],\"from\":\"sidorov@sidorov.example\"}'");
  ASSERT_EQ(sendgrid.first, 200) << sendgrid.second.dump();
  std::filesystem::remove_all(dir);

  std::map<std::string, InboundEvent> by_id;
  for (InboundEvent& event : Events()) by_id[event.email().message_id()] = std::move(event);
  ASSERT_EQ(by_id.size(), 6u);
  EXPECT_EQ(by_id["py-long-1@kuz.example"].email().subject(),
            "Запрос коммерческого предложения на поставку оборудования для склада");
  const auto& forwarded = by_id["fwdatt-1@bernard-conseil.example"].email();
  EXPECT_THAT(forwarded.text_body(), HasSubstr("From: Marc Lefebvre <marc2@client-final.example>"));
  EXPECT_THAT(forwarded.text_body(), HasSubstr("il nous faut 30 licences avant vendredi"));
  ASSERT_EQ(forwarded.attachments_size(), 1);
  EXPECT_EQ(forwarded.attachments(0).filename(), "Demande urgente.eml");
  const auto& long_refs = by_id["longrefs-1@other.example"].email();
  ASSERT_EQ(long_refs.references_size(), 100);
  EXPECT_EQ(long_refs.references(0), "old0@list.example");
  EXPECT_EQ(long_refs.references(99), "lmtp-1@moreau.example");
  EXPECT_EQ(by_id["mg-subject@example.org"].email().subject(), "Demande de devis");
  EXPECT_EQ(by_id["pm-2@obrien.example"].email().from_name(), "Zoë O'Brien");
  EXPECT_EQ(by_id["pm-2@obrien.example"].person().last_name(), "O'Brien");
  const auto& sg = by_id["sg-8bit@sidorov.example"].email();
  EXPECT_EQ(sg.subject(), "Счёт на оплату");
  ASSERT_EQ(sg.attachments_size(), 1);
  EXPECT_EQ(sg.attachments(0).filename(), "счёт.pdf");
}

}  // namespace
}  // namespace leadflow
