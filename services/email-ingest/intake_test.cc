// The intake's log lines: what an operator reads to answer "did the mail from X arrive?".

#include "email-ingest/intake.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "email-ingest/message.h"

namespace leadflow::email {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

/// Acknowledges (or refuses, with `status`) each event at once: the Kafka producer is the
/// intake's collaborator here, not what is tested.
class FakePublisher : public ingest::Publisher {
 public:
  void Publish(const std::string&, const std::string&, const std::vector<kafka::Header>&,
               Done done) override {
    kafka::DeliveryResult result;
    result.status = status;
    result.error_class = status.ok() ? kafka::ErrorClass::kNone : kafka::ErrorClass::kRetryable;
    ++published;
    done(result);
  }
  absl::Status status = absl::OkStatus();
  int published = 0;
};

/// The default logger writes into `out` while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  /// The lines logged so far that contain `word`.
  std::vector<std::string> Lines(const std::string& word) const {
    std::vector<std::string> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) {
      if (line.find(word) != std::string::npos) lines.push_back(line);
    }
    return lines;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

std::string Mail(const std::string& id, int cc_count) {
  std::string mail = "Message-ID: <" + id +
                     ">\r\nFrom: Claire Secret <claire.secret@example.org>\r\n"
                     "To: sales@acme.test\r\n";
  if (cc_count > 0) {
    mail += "Cc: ";
    for (int i = 0; i < cc_count; ++i) {
      mail += (i ? ", " : "") + std::string("c") + std::to_string(i) + "@example.org";
    }
    mail += "\r\n";
  }
  return mail + "Subject: Tarif confidentiel\r\n\r\nNotre budget: 12 000 EUR.\r\n";
}

// Protects: each accepted message leaves one info line once Kafka acknowledged it — channel,
// event id, mailbox, size, recipient count — and nothing of its content (subject, text, sender);
// many recipients are a count on that one line; a message Kafka did not take has no accepted
// line (its warning says so instead); a dropped one keeps its own line (trial 89c #8: after 23
// messages the log held only the start lines).
TEST(IntakeLogTest, OneLinePerAcceptedMessageWithoutContent) {
  FakePublisher publisher;
  metrics::Registry registry;
  Intake intake(&publisher, &registry);
  CapturedLog log;
  Envelope envelope{
      .provider = "lmtp", .mail_from = "claire.secret@example.org", .mailbox = "sales@acme.test"};

  const std::string raw = Mail("log-1@example.org", 40);
  IntakeResult result;
  intake.SubmitRaw(raw, envelope, [&result](const IntakeResult& r) { result = r; });
  ASSERT_EQ(result.kind, IntakeResult::Kind::kPublished);
  std::vector<std::string> accepted = log.Lines("accepted");
  ASSERT_EQ(accepted.size(), 1u) << ::testing::PrintToString(accepted);
  EXPECT_THAT(accepted[0], HasSubstr("[info]"));
  EXPECT_THAT(accepted[0], HasSubstr("email: accepted lmtp message " + result.event_id));
  EXPECT_THAT(accepted[0], HasSubstr("mailbox=sales@acme.test"));
  EXPECT_THAT(accepted[0], HasSubstr("bytes=" + std::to_string(raw.size())));
  EXPECT_THAT(accepted[0], HasSubstr("recipients=41"));
  for (const char* content : {"Tarif", "budget", "12 000", "claire", "Secret", "c17@"}) {
    EXPECT_THAT(log.Lines(""), ::testing::Each(Not(HasSubstr(content)))) << content;
  }

  // Parsed fields (a provider's): their text and attachments make the size.
  ParsedMessage parsed = ParseMessage(Mail("log-2@example.org", 0));
  parsed.attachments.push_back(
      {.filename = "devis.pdf", .content_type = "application/pdf", .size_bytes = 1000});
  envelope.provider = "sendgrid";
  intake.SubmitParsed(parsed, envelope, [&result](const IntakeResult& r) { result = r; });
  ASSERT_EQ(result.kind, IntakeResult::Kind::kPublished);
  accepted = log.Lines("accepted sendgrid");
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_THAT(accepted[0], HasSubstr("bytes=" + std::to_string(parsed.text.size() + 1000)));
  EXPECT_THAT(accepted[0], HasSubstr("recipients=1 attachments=1"));

  // Kafka refuses: no accepted line, the warning instead.
  publisher.status = absl::UnavailableError("broker down");
  envelope.provider = "smtp";
  intake.SubmitRaw(Mail("log-3@example.org", 0), envelope,
                   [&result](const IntakeResult& r) { result = r; });
  ASSERT_EQ(result.kind, IntakeResult::Kind::kTemporary);
  EXPECT_TRUE(log.Lines("accepted smtp").empty());
  EXPECT_EQ(log.Lines("not acknowledged").size(), 1u);
  EXPECT_EQ(log.Lines("accepted").size(), 2u);
}

}  // namespace
}  // namespace leadflow::email
