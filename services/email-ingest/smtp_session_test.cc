// The SMTP/LMTP state machine, line by line, without sockets.

#include "email-ingest/smtp_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace leadflow::email {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class SmtpSessionTest : public ::testing::Test {
 protected:
  SmtpSession Make(bool lmtp = false, bool tls = false) {
    return SmtpSession(lmtp, "mx.acme.test", limits_, &policy_, tls);
  }
  // The first line of the reply (its code and text).
  static std::string Code(const SmtpStep& step) { return step.reply.substr(0, 9); }

  SmtpLimits limits_{.max_message_bytes = 1000, .max_recipients = 3, .max_errors = 10};
  RecipientPolicy policy_ = RecipientPolicy::Parse("sales@acme.test, @support.acme.test, acme.org");
};

// Protects: only configured addresses and domains are ours; matching ignores case.
TEST_F(SmtpSessionTest, RecipientPolicy) {
  EXPECT_TRUE(policy_.Accepts("sales@acme.test"));
  EXPECT_TRUE(policy_.Accepts("SALES@ACME.TEST"));
  EXPECT_FALSE(policy_.Accepts("info@acme.test"));
  EXPECT_TRUE(policy_.Accepts("anyone@support.acme.test"));
  EXPECT_TRUE(policy_.Accepts("x@acme.org"));
  EXPECT_FALSE(policy_.Accepts("x@sub.acme.org"));
  EXPECT_FALSE(policy_.Accepts("x@acme.org.evil.example"));
  EXPECT_FALSE(policy_.Accepts("acme.org"));
  EXPECT_FALSE(RecipientPolicy::Parse("").Accepts("a@b.c"));
}

// Protects: a whole SMTP transaction: EHLO lists every extension, MAIL/RCPT/DATA in order,
// dot-unstuffing, and 250 only from OnDelivered(kAccepted).
TEST_F(SmtpSessionTest, FullTransaction) {
  SmtpSession s = Make(false, /*tls=*/true);
  EXPECT_THAT(s.Greeting(), StartsWith("220 mx.acme.test ESMTP"));
  SmtpStep ehlo = s.OnLine("EHLO client.example.org");
  for (const char* extension : {"250-PIPELINING", "250-SIZE 1000", "250-8BITMIME", "250-SMTPUTF8",
                                "250-STARTTLS", "250 ENHANCEDSTATUSCODES"}) {
    EXPECT_THAT(ehlo.reply, HasSubstr(std::string(extension) + "\r\n"));
  }
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<jean@example.org> SIZE=500 BODY=8BITMIME SMTPUTF8")),
            "250 2.1.0");
  EXPECT_EQ(Code(s.OnLine("RCPT TO:<Sales@acme.test>")), "250 2.1.5");
  EXPECT_EQ(Code(s.OnLine("DATA")), "354 3.0.0");
  EXPECT_TRUE(s.in_data());
  EXPECT_EQ(s.OnLine("Subject: hi").reply, "");
  EXPECT_EQ(s.OnLine("").reply, "");
  EXPECT_EQ(s.OnLine("..leading dot").reply, "");
  EXPECT_EQ(s.OnLine(".").deliver, true);
  EXPECT_TRUE(s.awaiting_delivery());
  EXPECT_EQ(s.message(), "Subject: hi\r\n\r\n.leading dot\r\n");
  EXPECT_EQ(s.mail_from(), "jean@example.org");
  EXPECT_EQ(s.recipients(), std::vector<std::string>{"sales@acme.test"});
  EXPECT_EQ(s.OnDelivered(DeliveryOutcome::kAccepted), "250 2.0.0 Ok: accepted\r\n");
  EXPECT_TRUE(s.idle());
  // A second transaction on the same connection, and its temporary failure.
  s.OnLine("MAIL FROM:<>");
  s.OnLine("RCPT TO:<sales@acme.test>");
  s.OnLine("DATA");
  s.OnLine("x");
  ASSERT_TRUE(s.OnLine(".").deliver);
  EXPECT_EQ(s.mail_from(), "");
  EXPECT_THAT(s.OnDelivered(DeliveryOutcome::kTemporary), StartsWith("451 4.3.0 "));
  EXPECT_EQ(Code(s.OnLine("QUIT")), "221 2.0.0");
  EXPECT_TRUE(s.OnLine("QUIT").close);
}

// Protects: never an open relay: a recipient that is not ours is 550 5.1.1, and DATA without
// an accepted recipient is refused.
TEST_F(SmtpSessionTest, RelayAttemptRefused) {
  SmtpSession s = Make();
  s.OnLine("EHLO spammer");
  s.OnLine("MAIL FROM:<spam@example.net>");
  EXPECT_EQ(Code(s.OnLine("RCPT TO:<victim@gmail.com>")), "550 5.1.1");
  EXPECT_EQ(Code(s.OnLine("RCPT TO:<info@acme.test>")), "550 5.1.1");
  EXPECT_EQ(s.stats().recipients_refused, 2u);
  EXPECT_EQ(Code(s.OnLine("DATA")), "554 5.5.1");
  EXPECT_FALSE(s.in_data());
}

// Protects: SIZE above the limit is 552 5.3.4 at MAIL; a message growing past it during DATA is
// 552 5.3.4 at its end and is never delivered.
TEST_F(SmtpSessionTest, MessageSize) {
  SmtpSession s = Make();
  s.OnLine("EHLO c");
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<a@example.org> SIZE=1001")), "552 5.3.4");
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<a@example.org> SIZE=1000")), "250 2.1.0");
  s.OnLine("RCPT TO:<sales@acme.test>");
  s.OnLine("DATA");
  for (int i = 0; i < 20; ++i) s.OnLine(std::string(98, 'x'));
  SmtpStep end = s.OnLine(".");
  EXPECT_FALSE(end.deliver);
  EXPECT_EQ(Code(end), "552 5.3.4");
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.message(), "");
}

// Protects: the recipient limit answers 452 4.5.3 (the client sends the rest later).
TEST_F(SmtpSessionTest, RecipientLimit) {
  SmtpSession s = Make();
  s.OnLine("EHLO c");
  s.OnLine("MAIL FROM:<a@example.org>");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Code(s.OnLine("RCPT TO:<sales@acme.test>")), "250 2.1.5");
  EXPECT_EQ(Code(s.OnLine("RCPT TO:<sales@acme.test>")), "452 4.5.3");
}

// Protects: commands out of order and bad syntax are refused with the right codes, and a client
// that keeps sending garbage is disconnected.
TEST_F(SmtpSessionTest, SequenceAndSyntax) {
  SmtpSession s = Make();
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<a@example.org>")), "503 5.5.1");
  EXPECT_EQ(Code(s.OnLine("EHLO")), "501 5.5.4");
  s.OnLine("HELO c");
  EXPECT_EQ(Code(s.OnLine("RCPT TO:<sales@acme.test>")), "503 5.5.1");
  EXPECT_EQ(Code(s.OnLine("DATA")), "503 5.5.1");
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<no-at-sign>")), "501 5.1.7");
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<a@example.org> FOO=1")), "555 5.5.4");
  EXPECT_EQ(Code(s.OnLine("NOOP")), "250 2.0.0");
  EXPECT_EQ(Code(s.OnLine("VRFY sales")), "252 2.5.0");
  EXPECT_EQ(Code(s.OnLine("RSET")), "250 2.0.0");
  EXPECT_EQ(Code(s.OnLine("STARTTLS")), "502 5.5.1");  // no certificate configured
  EXPECT_EQ(Code(s.OnLine("xyzzy", /*too_long=*/true)), "500 5.5.2");
  SmtpStep last;
  for (int i = 0; i < 10 && !last.close; ++i) last = s.OnLine("GARBAGE");
  EXPECT_TRUE(last.close);
  EXPECT_EQ(Code(last), "421 4.7.0");
}

// Protects: a message within the size limit is never refused for one long line (M14): a line
// handed over in pieces (the connection's way with a long line) is delivered whole, dot-unstuffed
// once at its start and not ended by a "." inside it; the size limit still holds across pieces
// (552 5.3.4 at the final ".", nothing delivered).
TEST_F(SmtpSessionTest, LongDataLineIsDeliveredWithinTheSizeLimit) {
  SmtpSession s = Make();
  s.OnLine("EHLO c");
  s.OnLine("MAIL FROM:<a@example.org>");
  s.OnLine("RCPT TO:<sales@acme.test>");
  s.OnLine("DATA");
  const std::string long_value(600, 'x');
  EXPECT_EQ(s.OnDataFragment("X-Long: ").reply, "");
  EXPECT_EQ(s.OnDataFragment(long_value).reply, "");
  EXPECT_FALSE(s.OnLine(".tail").deliver);  // the end of the long line, not a terminator
  EXPECT_EQ(s.OnDataFragment("..stuffed start").reply, "");
  EXPECT_FALSE(s.OnLine(".").deliver);  // ends that line: ".stuffed start."
  s.OnLine("");
  s.OnLine("body");
  SmtpStep end = s.OnLine(".");
  ASSERT_TRUE(end.deliver);
  EXPECT_EQ(s.message(), "X-Long: " + long_value + ".tail\r\n.stuffed start.\r\n\r\nbody\r\n");

  s.OnDelivered(DeliveryOutcome::kAccepted);
  s.OnLine("MAIL FROM:<a@example.org>");
  s.OnLine("RCPT TO:<sales@acme.test>");
  s.OnLine("DATA");
  s.OnDataFragment(std::string(600, 'y'));
  s.OnDataFragment(std::string(600, 'y'));  // 1200 bytes > max_message_bytes (1000)
  s.OnLine("");
  SmtpStep refused = s.OnLine(".");
  EXPECT_FALSE(refused.deliver);
  EXPECT_EQ(Code(refused), "552 5.3.4");
  EXPECT_EQ(s.stats().too_large, 1u);
}

// Protects: STARTTLS is offered with a certificate, answered 220, and the session starts over
// (EHLO again, STARTTLS no longer listed).
TEST_F(SmtpSessionTest, StartTls) {
  SmtpSession s = Make(false, /*tls=*/true);
  s.OnLine("EHLO c");
  SmtpStep step = s.OnLine("STARTTLS");
  EXPECT_TRUE(step.start_tls);
  EXPECT_EQ(Code(step), "220 2.0.0");
  s.ResetAfterTls();
  EXPECT_TRUE(s.tls_active());
  EXPECT_EQ(Code(s.OnLine("MAIL FROM:<a@example.org>")), "503 5.5.1");
  SmtpStep ehlo = s.OnLine("EHLO c");
  EXPECT_THAT(ehlo.reply, Not(HasSubstr("STARTTLS")));
  EXPECT_EQ(Code(s.OnLine("STARTTLS")), "503 5.5.1");
}

// Protects: LMTP takes LHLO (not EHLO) and answers once per accepted recipient after DATA.
TEST_F(SmtpSessionTest, LmtpAnswersPerRecipient) {
  SmtpSession s = Make(/*lmtp=*/true);
  EXPECT_THAT(s.Greeting(), HasSubstr(" LMTP "));
  EXPECT_EQ(Code(s.OnLine("EHLO c")), "500 5.5.1");
  EXPECT_EQ(Code(s.OnLine("LHLO c")).substr(0, 3), "250");
  s.OnLine("MAIL FROM:<a@example.org>");
  s.OnLine("RCPT TO:<sales@acme.test>");
  EXPECT_EQ(Code(s.OnLine("RCPT TO:<nobody@example.net>")), "550 5.1.1");
  s.OnLine("RCPT TO:<team@support.acme.test>");
  s.OnLine("DATA");
  s.OnLine("hello");
  ASSERT_TRUE(s.OnLine(".").deliver);
  EXPECT_EQ(s.OnDelivered(DeliveryOutcome::kAccepted),
            "250 2.0.0 Ok: accepted <sales@acme.test>\r\n"
            "250 2.0.0 Ok: accepted <team@support.acme.test>\r\n");
}

// Protects: the EHLO name echoed in the answer cannot carry a CR or LF (found by the fuzzer:
// "EHLO a\rHLO c" forged a reply line).
TEST_F(SmtpSessionTest, EhloNameCannotForgeReplyLines) {
  SmtpSession s = Make();
  SmtpStep step = s.OnLine(std::string("EHLO clie\rnt\x05x"));
  EXPECT_THAT(step.reply, StartsWith("250-mx.acme.test greets clie?nt?x\r\n"));
  EXPECT_EQ(step.reply.find('\r'), step.reply.find("\r\n"));
}

// Protects: SMTP paths: brackets, the null sender, source routes, parameters.
TEST(SmtpPathTest, Parse) {
  auto path = ParseSmtpPath("<a@b.c> SIZE=12 BODY=8bitmime");
  ASSERT_TRUE(path);
  EXPECT_EQ(path->address, "a@b.c");
  ASSERT_EQ(path->parameters.size(), 2u);
  EXPECT_EQ(path->parameters[0], (std::pair<std::string, std::string>{"SIZE", "12"}));
  EXPECT_EQ(ParseSmtpPath("<>")->address, "");
  EXPECT_EQ(ParseSmtpPath(" <@relay.example:user@d.example>")->address, "user@d.example");
  EXPECT_EQ(ParseSmtpPath("bare@d.example")->address, "bare@d.example");
  EXPECT_FALSE(ParseSmtpPath("<a@b.c"));
  EXPECT_FALSE(ParseSmtpPath("<a@b.c>junk"));
}

}  // namespace
}  // namespace leadflow::email
