// The email channel's rules in crm-core (docs/architecture.md, "Email: threads, messages,
// routes") against real PostgreSQL and the Kafka protocol (librdkafka's mock cluster for the
// dead-letter topic): threads, one open reply activity per thread, kept messages, Message-IDs
// delivered twice, the Reply-To, and routes by recipient address.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "crm-core/inbound/batch.h"
#include "crm-core/store/email_repository.h"
#include "crm-core/store/migrations.h"
#include "crm-core/store/statements.h"
#include "pg/migrations.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using events::v1::InboundEvent;

struct Mail {
  std::string message_id;
  std::string from;
  std::string name = "Jean Dupont";
  std::string subject = "Devis";
  std::string body = "Bonjour, un devis pour 3 postes.";
  std::string in_reply_to;
  std::vector<std::string> references;
  std::string mailbox = "sales@acme.test";
  std::string reply_to;
  std::string event_id;  // default: from the Message-ID, as email-ingest makes it
};

kafka::Message Encode(const Mail& mail) {
  InboundEvent event;
  event.set_event_id(!mail.event_id.empty() ? mail.event_id : "email:" + mail.message_id);
  auto* identity = event.add_identities();
  identity->set_kind(events::v1::Identity::EMAIL);
  identity->set_value(mail.from);
  const size_t space = mail.name.rfind(' ');
  event.mutable_person()->set_first_name(space == std::string::npos ? mail.name
                                                                    : mail.name.substr(0, space));
  if (space != std::string::npos)
    event.mutable_person()->set_last_name(mail.name.substr(space + 1));
  events::v1::EmailMessage* email = event.mutable_email();
  email->set_message_id(mail.message_id);
  email->set_from_address(mail.from);
  email->set_from_name(mail.name);
  email->add_to_addresses(mail.mailbox);
  email->add_cc_addresses("boss@" + mail.from.substr(mail.from.find('@') + 1));
  email->set_subject(mail.subject);
  email->set_text_body(mail.body);
  email->set_in_reply_to(mail.in_reply_to);
  for (const std::string& reference : mail.references) email->add_references(reference);
  email->set_reply_to_address(mail.reply_to);
  email->set_mailbox(mail.mailbox);
  email->mutable_date()->set_seconds(1796029200);
  auto* attachment = email->add_attachments();
  attachment->set_filename("plan.pdf");
  attachment->set_content_type("application/pdf");
  attachment->set_size_bytes(12345);
  email->set_provider("smtp");
  kafka::Message message;
  message.topic = kafka::kInboundTopic;
  static int64_t next_offset = 9000;
  message.offset = next_offset++;
  message.key = mail.from;
  event.SerializeToString(&message.value);
  return message;
}

class EmailRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg::ApplyMigrations(database_.url(), Migrations()).ok());
    kafka_.CreateTopic(kafka::kInboundDlqTopic, 1);
    auto producer = kafka::Producer::Create({.brokers = kafka_.bootstrap()});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
    processor_ = std::make_unique<BatchProcessor>(BatchProcessorOptions{}, database_.url(), nullptr,
                                                  *producer_, counters_);
    alice_ = Count("INSERT INTO users (name) VALUES ('Alice') RETURNING id");
    bob_ = Count("INSERT INTO users (name) VALUES ('Bob') RETURNING id");
  }

  int64_t Count(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    int64_t value = work.exec1(sql)[0].as<int64_t>(0);
    work.commit();
    return value;
  }
  std::string Text(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::read_transaction work(connection);
    return work.exec1(sql)[0].as<std::string>("");
  }
  void Exec(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec0(sql);
    work.commit();
  }
  void Apply(const std::vector<kafka::Message>& batch) {
    ASSERT_TRUE(processor_->Process(batch).ok());
  }
  std::vector<EmailMessageRecord> MessagesOf(domain::EntityRef owner, int64_t activity = 0) {
    pqxx::connection connection(database_.url());
    pg::PrepareAll(connection, Statements());
    pqxx::read_transaction work(connection);
    return EmailRepository(work).List(activity, owner, 0, 100);
  }

  testing::TempDatabase database_;
  testing::MockKafka kafka_;
  std::unique_ptr<kafka::Producer> producer_;
  metrics::Registry registry_;
  InboundCounters counters_{registry_};
  std::unique_ptr<BatchProcessor> processor_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

// Protects: a first mail from an unknown sender makes a lead (source EMAIL, "{name} – {subject}"
// without a city) with one open EMAIL activity, and the message is kept with every field, linked
// to that activity and lead.
TEST_F(EmailRulesTest, FirstMailMakesLeadAndKeepsMessage) {
  Apply({Encode({.message_id = "m1@example.org", .from = "jean@example.org"})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 1);
  const int64_t lead = Count("SELECT id FROM leads");
  EXPECT_EQ(Text("SELECT source FROM leads"), "EMAIL");
  EXPECT_EQ(Text("SELECT title FROM leads"), "Jean Dupont – Devis");
  ASSERT_EQ(Count("SELECT count(*) FROM activities WHERE type = 'EMAIL' AND NOT completed"), 1);
  const int64_t activity = Count("SELECT id FROM activities");
  std::vector<EmailMessageRecord> kept = MessagesOf({domain::EntityKind::kLead, lead});
  ASSERT_EQ(kept.size(), 1u);
  const EmailMessageRecord& message = kept[0];
  EXPECT_EQ(message.message_id, "m1@example.org");
  EXPECT_EQ(message.activity_id, activity);
  EXPECT_EQ(message.thread_key, "m1@example.org");
  EXPECT_EQ(message.from_address, "jean@example.org");
  EXPECT_EQ(message.from_name, "Jean Dupont");
  EXPECT_EQ(message.to_addresses, std::vector<std::string>{"sales@acme.test"});
  EXPECT_EQ(message.cc_addresses, std::vector<std::string>{"boss@example.org"});
  EXPECT_EQ(message.subject, "Devis");
  EXPECT_EQ(message.body, "Bonjour, un devis pour 3 postes.");
  EXPECT_EQ(message.sent_micros, int64_t{1796029200} * 1000000);
  ASSERT_EQ(message.attachments.size(), 1u);
  EXPECT_EQ(message.attachments[0].filename, "plan.pdf");
  EXPECT_EQ(message.attachments[0].size_bytes, 12345);
  EXPECT_EQ(MessagesOf({}, activity).size(), 1u);
}

// Protects: a reply in the thread from another address goes to the thread's lead and joins its
// open activity — no new lead, no second activity, the new address added to nobody — whether
// the first message came in an earlier batch or earlier in the same batch.
TEST_F(EmailRulesTest, ReplyFromAnotherAddressJoinsThread) {
  Apply({Encode({.message_id = "t1@example.org", .from = "jean@example.org"})});
  Apply({Encode({.message_id = "t2@other.example",
                 .from = "assistant@other.example",
                 .name = "Paul Martin",
                 .subject = "Re: Devis",
                 .in_reply_to = "t1@example.org",
                 .references = {"t1@example.org"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'assistant@other.example'"),
            0);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key = 't1@example.org'"), 2);

  // The same within one batch, the reply naming the first only in References.
  Apply({Encode({.message_id = "u1@example.net", .from = "anna@example.net", .name = "Anna"}),
         Encode({.message_id = "u2@elsewhere.example",
                 .from = "colleague@elsewhere.example",
                 .references = {"u0@nowhere.example", "u1@example.net"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages WHERE thread_key = "
                  "'u1@example.net'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value LIKE 'colleague@%'"), 0);
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 2);
}

// Protects: one open reply activity per thread: once it is completed the next message of the
// thread opens a new one on the same record, and the message after that joins the new one.
TEST_F(EmailRulesTest, CompletedReplyActivityThenNewOne) {
  Apply({Encode({.message_id = "c1@example.org", .from = "jean@example.org"})});
  Exec("UPDATE activities SET completed = true, completed_at = now()");
  Apply({Encode({.message_id = "c2@example.org",
                 .from = "jean@example.org",
                 .subject = "Re: Devis",
                 .in_reply_to = "c1@example.org"})});
  Apply({Encode({.message_id = "c3@example.org",
                 .from = "other@example.com",
                 .subject = "Re: Re: Devis",
                 .in_reply_to = "c1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed AND type = 'EMAIL' AND "
                  "owner_type = 'LEAD'"),
            1);
  const int64_t open = Count("SELECT id FROM activities WHERE NOT completed");
  EXPECT_EQ(
      Count("SELECT count(*) FROM email_messages WHERE activity_id = " + std::to_string(open)), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
}

// Protects: the thread's record may be a deal (simple mode: contact + deal): a reply from
// another address goes on that deal's open activity; no second contact or deal is made.
TEST_F(EmailRulesTest, ReplyGoesToTheThreadsDeal) {
  Exec("UPDATE crm_settings SET mode = 'SIMPLE', last_name_placeholder = 'Inconnu'");
  Apply({Encode({.message_id = "d1@example.org", .from = "marie@example.org", .name = "Marie"})});
  ASSERT_EQ(Count("SELECT count(*) FROM deals"), 1);
  EXPECT_EQ(Text("SELECT first_name || '/' || last_name FROM contacts"), "Marie/Inconnu");
  EXPECT_EQ(Text("SELECT source_id FROM deals"), "EMAIL");
  const int64_t deal = Count("SELECT id FROM deals");
  Apply({Encode({.message_id = "d2@example.org",
                 .from = "someone@example.com",
                 .in_reply_to = "d1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(MessagesOf({domain::EntityKind::kDeal, deal}).size(), 2u);
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value = 'someone@example.com'"),
            0);
}

// Protects: a thread whose lead was converted follows it to the deal it became: the reply opens
// a reply activity on that deal (the lead is closed), no new lead.
TEST_F(EmailRulesTest, ReplyFollowsConvertedLeadToItsDeal) {
  Apply({Encode({.message_id = "k1@example.org", .from = "jean@example.org"})});
  const int64_t lead = Count("SELECT id FROM leads");
  const int64_t deal = Count(
      "INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, responsible_user_id) "
      "VALUES ('Kitchen', 1, 'NEW', 'PROCESS', " +
      std::to_string(bob_) + ") RETURNING id");
  Exec("UPDATE leads SET status = 'CONVERTED', converted_deal_id = " + std::to_string(deal) +
       " WHERE id = " + std::to_string(lead));
  Apply({Encode({.message_id = "k2@example.org",
                 .from = "jean@example.org",
                 .subject = "Re: Devis",
                 .in_reply_to = "k1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE owner_type = 'DEAL' AND owner_id = " +
                  std::to_string(deal) +
                  " AND type = 'EMAIL' AND NOT completed AND "
                  "responsible_user_id = " +
                  std::to_string(bob_)),
            1);
  EXPECT_EQ(MessagesOf({domain::EntityKind::kDeal, deal}).size(), 1u);
}

// Protects: a forged In-Reply-To files the outsider's message under the named record (what the
// thread rule asks) but adds the outsider's address to no record and makes nothing: their next
// mail without it is matched as a stranger's (a lead of their own), not as the victim's.
TEST_F(EmailRulesTest, ForgedInReplyToGrowsNoRecord) {
  Apply({Encode({.message_id = "v1@victim.example", .from = "victim@victim.example"})});
  const int64_t victim = Count("SELECT id FROM leads");
  Apply({Encode({.message_id = "x1@attacker.example",
                 .from = "mallory@attacker.example",
                 .in_reply_to = "v1@victim.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE lead_id = " + std::to_string(victim)),
            1);
  Apply({Encode({.message_id = "x2@attacker.example", .from = "mallory@attacker.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'mallory@attacker.example' "
                  "AND lead_id = " +
                  std::to_string(victim)),
            0);
}

// Protects: the same Message-ID under two event ids (two deliveries that did not agree on the
// id) has one effect, in one batch or two.
TEST_F(EmailRulesTest, SameMessageIdTwiceHasOneEffect) {
  Apply({Encode({.message_id = "dup@example.org", .from = "jean@example.org", .event_id = "a"}),
         Encode({.message_id = "dup@example.org", .from = "jean@example.org", .event_id = "b"})});
  Apply({Encode({.message_id = "dup@example.org", .from = "jean@example.org", .event_id = "c"})});
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages"), 1);
  EXPECT_EQ(counters_.email.duplicate_messages.Value(), 2);
}

// Protects: the Reply-To finds the sender's record, but neither it nor the From is added to a
// record found that way (a forged Reply-To cannot give an outsider's address to a customer).
TEST_F(EmailRulesTest, ReplyToMatchesButIsNeverAttached) {
  Apply({Encode({.message_id = "r1@example.org", .from = "jean@example.org"})});
  Apply({Encode({.message_id = "r2@relay.example",
                 .from = "noreply@relay.example",
                 .subject = "Formulaire",
                 .reply_to = "Jean@Example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities"), 1);
  // Nothing known: the new lead holds the From only.
  Apply({Encode({.message_id = "r3@relay.example",
                 .from = "noreply@relay.example",
                 .reply_to = "new@example.com"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'new@example.com'"), 0);
}

// Protects: mail to sales@ and support@ rotates over each route's queue, and simple-mode deals
// go to the route's pipeline; an address without a route uses the channel's queue and the
// inbound pipeline.
TEST_F(EmailRulesTest, RoutesByRecipientAddress) {
  Exec(
      "INSERT INTO assignment_queues (queue_key) VALUES ('mail-sales'), ('mail-support');"
      "INSERT INTO assignment_queue_members VALUES ('mail-sales', " +
      std::to_string(alice_) + ", 1), ('mail-support', " + std::to_string(bob_) +
      ", 1);"
      "INSERT INTO pipelines (id, name, sort) VALUES (2, 'Support', 20);"
      "INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) VALUES "
      "(2, 'OPEN', 'Open', 10, 'PROCESS'), (2, 'SOLVED', 'Solved', 20, 'SUCCESS'), "
      "(2, 'DROPPED', 'Dropped', 30, 'FAILURE');"
      "INSERT INTO email_routes VALUES ('sales@acme.test', NULL, 'mail-sales'), "
      "('support@acme.test', 2, 'mail-support')");
  Apply(
      {Encode({.message_id = "s1@a.example", .from = "a@a.example", .mailbox = "sales@acme.test"}),
       Encode(
           {.message_id = "s2@b.example", .from = "b@b.example", .mailbox = "Support@Acme.test"})});
  EXPECT_EQ(Count("SELECT responsible_user_id FROM leads WHERE source_details->>'message_id' = "
                  "'s1@a.example'"),
            alice_);
  EXPECT_EQ(Count("SELECT responsible_user_id FROM leads WHERE source_details->>'message_id' = "
                  "'s2@b.example'"),
            bob_);
  EXPECT_EQ(Count("SELECT position FROM assignment_queues WHERE queue_key = 'channel:EMAIL'"), 0);
  Apply(
      {Encode({.message_id = "s3@c.example", .from = "c@c.example", .mailbox = "info@acme.test"})});
  EXPECT_EQ(Count("SELECT position FROM assignment_queues WHERE queue_key = 'channel:EMAIL'"), 1);

  Exec("UPDATE crm_settings SET mode = 'SIMPLE'");
  Apply({Encode(
             {.message_id = "s4@d.example", .from = "d@d.example", .mailbox = "support@acme.test"}),
         Encode(
             {.message_id = "s5@e.example", .from = "e@e.example", .mailbox = "sales@acme.test"})});
  EXPECT_EQ(Text("SELECT pipeline_id || '/' || stage_id || '/' || responsible_user_id FROM deals "
                 "WHERE origin_event_id = 'email:s4@d.example'"),
            "2/OPEN/" + std::to_string(bob_));
  EXPECT_EQ(Text("SELECT pipeline_id || '/' || stage_id || '/' || responsible_user_id FROM deals "
                 "WHERE origin_event_id = 'email:s5@e.example'"),
            "1/NEW/" + std::to_string(alice_));
}

}  // namespace
}  // namespace leadflow::crm
