// The email channel from the mail client to the CRM record: the built email-ingest, dev-broker
// and crm-core, mail sent with Python's smtplib (tests/e2e/email_client.py) over SMTP and LMTP
// and delivered into a real Dovecot mailbox that email-ingest polls over IMAP, the settings
// written and the records read back with crmctl over gRPC.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>

#include "e2e/stack.h"
#include "testing/dovecot.h"

namespace leadflow::e2e {
namespace {

using testing::ShellQuote;

std::string SourceDir() {
  std::ifstream cache(testing::BuildDir() + "/CMakeCache.txt");
  std::string line;
  while (std::getline(cache, line)) {
    if (line.rfind("leadflow_SOURCE_DIR:STATIC=", 0) == 0) return line.substr(27);
  }
  throw std::runtime_error("leadflow_SOURCE_DIR not in CMakeCache.txt");
}

/// The built email-ingest on free ports, taking mail for sales@ and support@acme.test, and
/// polling `imap` (a Dovecot's user leads, for sales@acme.test) when given; `extra_env` on top.
class EmailIngest {
 public:
  explicit EmailIngest(const std::string& brokers, const testing::Dovecot* imap = nullptr,
                       const std::map<std::string, std::string>& extra_env = {}) {
    smtp_port_ = testing::FreePort();
    lmtp_port_ = testing::FreePort();
    ops_port_ = testing::FreePort();
    http_port_ = testing::FreePort();
    std::map<std::string, std::string> env = {
        {"EMAIL_KAFKA_BROKERS", brokers},
        {"EMAIL_RECIPIENTS", "sales@acme.test,support@acme.test"},
        {"EMAIL_SMTP_PORT", std::to_string(smtp_port_)},
        {"EMAIL_LMTP_ENABLED", "true"},
        {"EMAIL_LMTP_PORT", std::to_string(lmtp_port_)},
        {"EMAIL_HTTP_PORT", std::to_string(http_port_)},
        {"EMAIL_OPS_PORT", std::to_string(ops_port_)},
        {"EMAIL_HOSTNAME", "mx.acme.test"}};
    if (imap != nullptr) {
      env["EMAIL_IMAP_URL"] = imap->url();
      env["EMAIL_IMAP_USER"] = "leads";
      env["EMAIL_IMAP_PASSWORD"] = "secret";
      env["EMAIL_IMAP_ADDRESS"] = "sales@acme.test";
      env["EMAIL_IMAP_INTERVAL_MS"] = "300";
    }
    for (const auto& [name, value] : extra_env) env[name] = value;
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
  /// Sends `message` with smtplib (LMTP when asked); the code of the answer to DATA.
  int Send(const std::string& message, const std::string& mail_from, const std::string& rcpt,
           bool lmtp = false) const {
    std::string file = testing::BuildDir() + "/test-logs/" + testing::UniqueName("mail") + ".eml";
    std::ofstream(file, std::ios::binary) << message;
    std::string output = testing::Shell(
        "python3 " + ShellQuote(SourceDir() + "/tests/e2e/email_client.py") + " --port " +
        std::to_string(lmtp ? lmtp_port_ : smtp_port_) + (lmtp ? " --lmtp" : "") + " --mail-from " +
        ShellQuote(mail_from) + " --rcpt " + ShellQuote(rcpt) + " " + ShellQuote(file));
    std::filesystem::remove(file);
    auto json = nlohmann::json::parse(output, nullptr, false);
    if (json.is_discarded() || !json.contains("data") || json["data"].empty()) return 0;
    return json["data"][0][0].get<int>();
  }
  /// Posts `json` to the Postmark route with curl (EMAIL_POSTMARK_BASIC_AUTH postmark:pm-secret
  /// in `extra_env`); the HTTP status.
  int PostPostmark(const nlohmann::json& json) const {
    std::string file = testing::BuildDir() + "/test-logs/" + testing::UniqueName("pm") + ".json";
    std::ofstream(file, std::ios::binary) << json.dump();
    std::string status = testing::Shell(
        "curl -s -o /dev/null -w '%{http_code}' --max-time 30 -u postmark:pm-secret "
        "-H 'Content-Type: application/json' --data-binary @" +
        ShellQuote(file) + " http://127.0.0.1:" + std::to_string(http_port_) +
        "/v1/email/postmark");
    std::filesystem::remove(file);
    return std::atoi(status.c_str());
  }
  testing::Process& process() { return *process_; }

 private:
  std::unique_ptr<testing::Process> process_;
  int http_port_ = 0;
  int smtp_port_ = 0;
  int lmtp_port_ = 0;
  int ops_port_ = 0;
};

std::string Mail(const std::string& message_id, const std::string& from, const std::string& to,
                 const std::string& subject, const std::string& extra_headers = "",
                 const std::string& body = "Bonjour, je voudrais un devis.") {
  return "Message-ID: <" + message_id + ">\r\nFrom: " + from + "\r\nTo: " + to +
         "\r\nSubject: " + subject + "\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n" +
         extra_headers + "\r\n" + body + "\r\n";
}

class EmailRulesE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Migrate(database_.url())); }
  int64_t Sql(const std::string& sql) { return Count(database_.url(), sql); }
  int64_t Insert(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    int64_t id = work.exec1(sql)[0].as<int64_t>();
    work.commit();
    return id;
  }
  // crm-core's counter `series`, 0 when absent.
  double CoreMetric(const CrmCore& core, const std::string& series) {
    return testing::MetricValue(testing::Shell("curl -s --max-time 5 http://127.0.0.1:" +
                                               std::to_string(core.http_port()) + "/metrics"),
                                series)
        .value_or(0);
  }

  testing::TempDatabase database_;
  DevBroker broker_;
};

// Protects, end to end: a first mail → a lead with an open reply activity and the message kept,
// read over gRPC; a reply from another address of the thread (its Cc) → the same lead and the
// same open activity, no new lead; an outsider quoting the thread's Message-ID → a lead of their
// own, nothing on the customer's; an auto-reply and a bounce in the thread → nothing; the same
// Message-ID delivered by SMTP and then into the IMAP mailbox email-ingest polls (a real
// Dovecot) → one effect, read over gRPC; mail to sales@ (SMTP) and support@ (LMTP) → their
// routes' queues; bad route settings → INVALID_ARGUMENT, nothing changed.
TEST_F(EmailRulesE2eTest, ThreadsRoutesAndDuplicates) {
  const int64_t alice = Insert("INSERT INTO users (name) VALUES ('Alice') RETURNING id");
  const int64_t bob = Insert("INSERT INTO users (name) VALUES ('Bob') RETURNING id");
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("mail"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  testing::Dovecot mailbox;
  EmailIngest ingest(broker_.bootstrap(), &mailbox);

  // Routes: sales@ → Alice's queue, support@ → Bob's.
  nlohmann::json routes = {{"update_mask", "queues,emailRoutes"},
                           {"settings",
                            {{"queues",
                              {{{"key", "mail-sales"}, {"user_ids", {alice}}},
                               {{"key", "mail-support"}, {"user_ids", {bob}}}}},
                             {"email_routes",
                              {{{"address", "Sales@Acme.test"}, {"queue", "mail-sales"}},
                               {{"address", "support@acme.test"}, {"queue", "mail-support"}}}}}}};
  for (const auto& bad : {nlohmann::json{{"address", "not an address"}},
                          nlohmann::json{{"address", "x@acme.test"}, {"pipeline_id", 99}},
                          nlohmann::json{{"address", "x@acme.test"}, {"queue", "bad key!"}}}) {
    nlohmann::json request = routes;
    request["settings"]["email_routes"].push_back(bad);
    EXPECT_EQ(Call(api, "SettingsService/UpdateSettings", request).value("code", 0), 3)
        << bad.dump();
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM email_routes"), 0);
  auto updated = Call(api, "SettingsService/UpdateSettings", routes);
  ASSERT_EQ(updated["email_routes"].size(), 2u) << updated.dump();
  EXPECT_EQ(updated["email_routes"][0]["address"], "sales@acme.test");

  // A first mail, Paul in copy.
  const std::string first = Mail("first@example.org", "Jean Dupont <jean@example.org>",
                                 "sales@acme.test", "Devis cuisine", "Cc: paul@other.example\r\n");
  ASSERT_EQ(ingest.Send(first, "jean@example.org", "sales@acme.test"), 250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM email_messages") == 1; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  const int64_t lead = Sql("SELECT id FROM leads");
  EXPECT_EQ(Sql("SELECT responsible_user_id FROM leads"), alice);
  auto activities = Call(api, "ActivityService/ListActivities",
                         {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
  ASSERT_EQ(activities["activities"].size(), 1u) << activities.dump();
  EXPECT_EQ(activities["activities"][0]["type"], "ACTIVITY_TYPE_EMAIL");
  EXPECT_FALSE(activities["activities"][0].value("completed", false));
  const int64_t activity = std::stoll(activities["activities"][0]["id"].get<std::string>());
  auto messages =
      Call(api, "ActivityService/ListEmailMessages", {{"activity_id", activity}}, kReaderKey);
  ASSERT_EQ(messages["messages"].size(), 1u) << messages.dump();
  EXPECT_EQ(messages["messages"][0]["message_id"], "first@example.org");
  EXPECT_EQ(messages["messages"][0]["subject"], "Devis cuisine");

  // A reply in the thread from another address of it, then an auto-reply and a bounce naming it.
  ASSERT_EQ(ingest.Send(Mail("reply@other.example", "Paul <paul@other.example>", "sales@acme.test",
                             "Re: Devis cuisine",
                             "In-Reply-To: <first@example.org>\r\nReferences: <first@example.org>"
                             "\r\n",
                             "Je complète la demande de Jean."),
                        "paul@other.example", "sales@acme.test"),
            250);
  ASSERT_EQ(ingest.Send(Mail("ooo@example.org", "jean@example.org", "sales@acme.test", "Absent",
                             "Auto-Submitted: auto-replied\r\nIn-Reply-To: "
                             "<first@example.org>\r\n"),
                        "jean@example.org", "sales@acme.test"),
            250);
  ASSERT_EQ(ingest.Send("From: MAILER-DAEMON@mx.example.org\r\nTo: sales@acme.test\r\n"
                        "Subject: Undelivered\r\nIn-Reply-To: <first@example.org>\r\n"
                        "Content-Type: multipart/report; report-type=delivery-status; "
                        "boundary=R\r\n\r\n--R\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
                        "--R--\r\n",
                        "", "sales@acme.test"),
            250);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto listed = Call(api, "ActivityService/ListEmailMessages",
                           {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
        return listed.contains("messages") && listed["messages"].size() == 2;
      },
      std::chrono::seconds(30)))
      << core.process().Log();
  messages =
      Call(api, "ActivityService/ListEmailMessages", {{"activity_id", activity}}, kReaderKey);
  ASSERT_EQ(messages["messages"].size(), 2u) << messages.dump();
  EXPECT_EQ(messages["messages"][1]["from_address"], "paul@other.example");
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM lead_identities WHERE value = 'paul@other.example'"), 0);

  // An outsider quoting the thread's Message-ID: a lead of their own, nothing on Jean's.
  ASSERT_EQ(ingest.Send(Mail("spoof@attacker.example", "Mallory <mallory@attacker.example>",
                             "sales@acme.test", "Re: Devis cuisine",
                             "In-Reply-To: <first@example.org>\r\n"),
                        "mallory@attacker.example", "sales@acme.test"),
            250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM leads") == 2; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  const int64_t mallory = Sql("SELECT id FROM leads WHERE id <> " + std::to_string(lead));

  // The first mail delivered again, into the mailbox email-ingest polls over IMAP: the same
  // Message-ID, one effect.
  const double duplicates_before =
      CoreMetric(core, R"(crm_inbound_duplicates_total{detected_by="database"})") +
      CoreMetric(core, R"(crm_inbound_duplicates_total{detected_by="redis"})");
  mailbox.Deliver("first.eml", first);
  ASSERT_TRUE(
      testing::WaitFor([&] { return mailbox.Search("KEYWORD $LeadFlowImported") == "* SEARCH 1"; },
                       std::chrono::seconds(30)))
      << ingest.process().Log();
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return CoreMetric(core, R"(crm_inbound_duplicates_total{detected_by="database"})") +
                   CoreMetric(core, R"(crm_inbound_duplicates_total{detected_by="redis"})") >
               duplicates_before;
      },
      std::chrono::seconds(30)))
      << core.process().Log();
  messages = Call(api, "ActivityService/ListEmailMessages",
                  {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
  EXPECT_EQ(messages["messages"].size(), 2u) << messages.dump();
  activities = Call(api, "ActivityService/ListActivities",
                    {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
  EXPECT_EQ(activities["activities"].size(), 1u) << activities.dump();

  // Support mail, over LMTP, goes to Bob through support@'s route.
  ASSERT_EQ(ingest.Send(Mail("help@client.example", "Claire <claire@client.example>",
                             "support@acme.test", "Panne"),
                        "claire@client.example", "support@acme.test", /*lmtp=*/true),
            250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM leads") == 3; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  EXPECT_EQ(Sql("SELECT responsible_user_id FROM leads WHERE id NOT IN (" + std::to_string(lead) +
                ", " + std::to_string(mallory) + ")"),
            bob);

  // Nothing more came of the auto-reply, the bounce or the second delivery.
  EXPECT_EQ(Sql("SELECT count(*) FROM email_messages"), 4);
  EXPECT_EQ(Sql("SELECT count(*) FROM activities"), 3);
  EXPECT_EQ(Sql("SELECT repeat_count FROM leads WHERE id = " + std::to_string(lead)), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads WHERE title LIKE '%Absent%' OR title LIKE "
                "'%Undelivered%'"),
            0);
}

// Protects, end to end with smtplib and gRPC (new-user pass E12): a colleague at the customer's
// domain, never in the thread's To or Cc, replying in the thread → the same lead and the same
// open reply activity, her message listed with her own address as its from, no lead of hers; a
// stranger at gmail.com quoting the thread's Message-ID → a lead of their own; a stranger at
// gmail.com replying in the thread of a customer who writes from gmail.com → a lead of their own.
TEST_F(EmailRulesE2eTest, ColleagueJoinsTheThreadStrangersAtPublicDomainsDoNot) {
  Insert("INSERT INTO users (name) VALUES ('Alice') RETURNING id");
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("mail"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  EmailIngest ingest(broker_.bootstrap());

  ASSERT_EQ(ingest.Send(Mail("devis-lyon@acme-btp.fr", "Jean Dupont <jean.dupont@acme-btp.fr>",
                             "sales@acme.test", "Demande de devis chantier Lyon"),
                        "jean.dupont@acme-btp.fr", "sales@acme.test"),
            250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM email_messages") == 1; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  const int64_t lead = Sql("SELECT id FROM leads");
  auto activities = Call(api, "ActivityService/ListActivities",
                         {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
  ASSERT_EQ(activities["activities"].size(), 1u) << activities.dump();
  const int64_t activity = std::stoll(activities["activities"][0]["id"].get<std::string>());

  // Sophie, Jean's colleague, never in To or Cc, answers in the thread.
  ASSERT_EQ(ingest.Send(Mail("sophie-1@acme-btp.fr", "Sophie Durand <sophie.durand@acme-btp.fr>",
                             "sales@acme.test", "Re: Demande de devis chantier Lyon",
                             "In-Reply-To: <devis-lyon@acme-btp.fr>\r\nReferences: "
                             "<devis-lyon@acme-btp.fr>\r\n",
                             "Je reprends le dossier de Jean, il est en congés."),
                        "sophie.durand@acme-btp.fr", "sales@acme.test"),
            250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM email_messages") == 2; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  auto messages =
      Call(api, "ActivityService/ListEmailMessages", {{"activity_id", activity}}, kReaderKey);
  ASSERT_EQ(messages["messages"].size(), 2u) << messages.dump();
  EXPECT_EQ(messages["messages"][1]["from_address"], "sophie.durand@acme-btp.fr");
  EXPECT_EQ(messages["messages"][1]["from_name"], "Sophie Durand");
  activities = Call(api, "ActivityService/ListActivities",
                    {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
  ASSERT_EQ(activities["activities"].size(), 1u) << activities.dump();
  EXPECT_FALSE(activities["activities"][0].value("completed", false));
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads WHERE title LIKE '%Sophie%'"), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM lead_identities WHERE value LIKE 'sophie%'"), 0);

  // A stranger at gmail.com quoting the thread's Message-ID: a lead of their own.
  ASSERT_EQ(ingest.Send(Mail("m-1@mail.gmail.com", "Mallory <mallory.x@gmail.com>",
                             "sales@acme.test", "Re: Demande de devis chantier Lyon",
                             "In-Reply-To: <devis-lyon@acme-btp.fr>\r\n"),
                        "mallory.x@gmail.com", "sales@acme.test"),
            250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM leads") == 2; },
                               std::chrono::seconds(30)))
      << core.process().Log();

  // A customer at gmail.com, and a stranger at gmail.com replying in her thread.
  ASSERT_EQ(ingest.Send(Mail("claire-1@mail.gmail.com", "Claire Petit <claire.petit@gmail.com>",
                             "sales@acme.test", "Cuisine"),
                        "claire.petit@gmail.com", "sales@acme.test"),
            250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM leads") == 3; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  ASSERT_EQ(
      ingest.Send(Mail("eve-1@mail.gmail.com", "Eve <eve.stranger@gmail.com>", "sales@acme.test",
                       "Re: Cuisine", "In-Reply-To: <claire-1@mail.gmail.com>\r\n"),
                  "eve.stranger@gmail.com", "sales@acme.test"),
      250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM leads") == 4; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  EXPECT_EQ(Sql("SELECT count(*) FROM email_messages WHERE thread_key = 'devis-lyon@acme-btp.fr'"),
            2);
  EXPECT_EQ(Sql("SELECT count(*) FROM email_messages WHERE thread_key = 'claire-1@mail.gmail.com'"),
            1);
  messages = Call(api, "ActivityService/ListEmailMessages",
                  {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
  EXPECT_EQ(messages["messages"].size(), 2u) << messages.dump();
}

// Protects, end to end with crmctl: a message kept past the thread's cap is listed with
// "content_kept": false (and the one before it with true), so a reader can tell omitted text
// from none; a sender without a display name gets a lead titled by the address; a form
// builder's notification (EMAIL_RELAY_SENDERS) is listed under the person with the builder in
// "relay_address", and the builder's address is on no record.
TEST_F(EmailRulesE2eTest, CappedNamelessAndRelayedMailOverGrpc) {
  Insert("INSERT INTO users (name) VALUES ('Alice') RETURNING id");
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("mail"),
               {{"CRM_EMAIL_MAX_MESSAGES_PER_THREAD", "1"}});
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  EmailIngest ingest(broker_.bootstrap(), nullptr, {{"EMAIL_RELAY_SENDERS", "crm.wix.com"}});

  ASSERT_EQ(
      ingest.Send(Mail("bare@client.example", "anne@client.example", "sales@acme.test", "Devis"),
                  "anne@client.example", "sales@acme.test"),
      250);
  ASSERT_EQ(ingest.Send(
                Mail("bare2@client.example", "anne@client.example", "sales@acme.test", "Re: Devis",
                     "In-Reply-To: <bare@client.example>\r\n", "Et aussi 5 chaises."),
                "anne@client.example", "sales@acme.test"),
            250);
  ASSERT_EQ(
      ingest.Send(Mail("form@crm.wix.com", "Wix Forms <no-reply@crm.wix.com>", "sales@acme.test",
                       "Nouvelle soumission", "Reply-To: Marc Petit <marc@client.example>\r\n",
                       "Nom: Marc Petit\r\nMessage: un devis svp"),
                  "bounces@crm.wix.com", "sales@acme.test"),
      250);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM email_messages") == 3; },
                               std::chrono::seconds(30)))
      << core.process().Log();

  const int64_t anne =
      Sql("SELECT lead_id FROM lead_identities WHERE value = 'anne@client.example'");
  auto lead = Call(api, "LeadService/GetLead", {{"id", anne}}, kReaderKey);
  EXPECT_EQ(lead["title"], "anne@client.example – Devis") << lead.dump();
  auto messages = Call(api, "ActivityService/ListEmailMessages",
                       {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", anne}}, kReaderKey);
  ASSERT_EQ(messages["messages"].size(), 2u) << messages.dump();
  EXPECT_EQ(messages["messages"][0].value("content_kept", false), true) << messages.dump();
  ASSERT_TRUE(messages["messages"][1].contains("content_kept")) << messages.dump();
  EXPECT_EQ(messages["messages"][1]["content_kept"], false);
  EXPECT_FALSE(messages["messages"][1].contains("text"));
  EXPECT_EQ(messages["messages"][1]["subject"], "Re: Devis");

  const int64_t marc =
      Sql("SELECT lead_id FROM lead_identities WHERE value = 'marc@client.example'");
  messages = Call(api, "ActivityService/ListEmailMessages",
                  {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", marc}}, kReaderKey);
  ASSERT_EQ(messages["messages"].size(), 1u) << messages.dump();
  EXPECT_EQ(messages["messages"][0]["from_address"], "marc@client.example");
  EXPECT_EQ(messages["messages"][0]["relay_address"], "no-reply@crm.wix.com");
  EXPECT_EQ(messages["messages"][0]["content_kept"], true);
  EXPECT_EQ(Sql("SELECT count(*) FROM lead_identities WHERE value LIKE '%crm.wix.com'"), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 2);
}

// Protects, end to end (M14): one rule on every channel for what the caps cut, and every cut
// visible over gRPC (crmctl). Over SMTP (smtplib): a To of 201 addresses is taken (250), 100 kept
// and "to_addresses_omitted": 101; a message with a 100 KiB one-line header is taken (250, where
// the listener used to answer 500 5.5.2 and the sending server bounced the customer's mail), the
// header cut and named in "truncated_headers". Over the Postmark webhook (curl): the same shapes
// (ToFull of 201, a 100 KiB header) give the same answers. email_truncations_total counts each
// cut by channel and reason.
TEST_F(EmailRulesE2eTest, CutRecipientsAndHeadersAreTakenAndShown) {
  Insert("INSERT INTO users (name) VALUES ('Alice') RETURNING id");
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("mail"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  EmailIngest ingest(broker_.bootstrap(), nullptr,
                     {{"EMAIL_POSTMARK_BASIC_AUTH", "postmark:pm-secret"}});

  std::string to = "sales@acme.test";
  for (int i = 1; i < 201; ++i) to += ", r" + std::to_string(i) + "@b.example";
  ASSERT_EQ(ingest.Send(Mail("many@client.example", "Anne Roy <anne@client.example>", to, "Devis"),
                        "anne@client.example", "sales@acme.test"),
            250);
  const std::string long_value(100 * 1024, 'v');
  ASSERT_EQ(ingest.Send(Mail("long@client.example", "Paul Roy <paul@client.example>",
                             "sales@acme.test", "Devis", "X-Campaign: " + long_value + "\r\n"),
                        "paul@client.example", "sales@acme.test"),
            250);

  nlohmann::json to_full = nlohmann::json::array();
  to_full.push_back({{"Email", "sales@acme.test"}, {"Name", ""}});
  for (int i = 1; i < 201; ++i) {
    to_full.push_back({{"Email", "p" + std::to_string(i) + "@b.example"}, {"Name", ""}});
  }
  ASSERT_EQ(
      ingest.PostPostmark({{"FromFull", {{"Email", "marc@client.example"}, {"Name", "Marc Petit"}}},
                           {"ToFull", to_full},
                           {"OriginalRecipient", "sales@acme.test"},
                           {"Subject", "Devis"},
                           {"TextBody", "Bonjour"},
                           {"Headers",
                            {{{"Name", "Message-ID"}, {"Value", "<pm-cut@client.example>"}},
                             {{"Name", "X-Campaign"}, {"Value", long_value}}}}}),
      200);
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM email_messages") == 3; },
                               std::chrono::seconds(30)))
      << core.process().Log();

  auto messages_of = [&](const std::string& address) {
    const int64_t lead = Sql("SELECT lead_id FROM lead_identities WHERE value = '" + address + "'");
    auto answer = Call(api, "ActivityService/ListEmailMessages",
                       {{"owner_type", "OWNER_TYPE_LEAD"}, {"owner_id", lead}}, kReaderKey);
    EXPECT_EQ(answer["messages"].size(), 1u) << answer.dump();
    return answer["messages"].empty() ? nlohmann::json::object() : answer["messages"][0];
  };
  auto anne = messages_of("anne@client.example");
  EXPECT_EQ(anne["to_addresses"].size(), 100u) << anne.dump();
  EXPECT_EQ(anne.value("to_addresses_omitted", 0), 101) << anne.dump();
  EXPECT_FALSE(anne.contains("truncated_headers")) << anne.dump();

  auto paul = messages_of("paul@client.example");
  EXPECT_EQ(paul["truncated_headers"], nlohmann::json::array({"X-Campaign"})) << paul.dump();
  EXPECT_FALSE(paul.contains("to_addresses_omitted")) << paul.dump();
  EXPECT_EQ(paul["text"], "Bonjour, je voudrais un devis.");

  auto marc = messages_of("marc@client.example");
  EXPECT_EQ(marc["to_addresses"].size(), 100u) << marc.dump();
  EXPECT_EQ(marc.value("to_addresses_omitted", 0), 101) << marc.dump();
  EXPECT_EQ(marc["truncated_headers"], nlohmann::json::array({"X-Campaign"})) << marc.dump();

  const std::string metrics = ingest.Metrics();
  EXPECT_EQ(testing::MetricValue(
                metrics, "email_truncations_total{channel=\"smtp\",reason=\"to_recipients\"}"),
            1);
  EXPECT_EQ(
      testing::MetricValue(metrics, "email_truncations_total{channel=\"smtp\",reason=\"header\"}"),
      1);
  EXPECT_EQ(testing::MetricValue(
                metrics, "email_truncations_total{channel=\"postmark\",reason=\"to_recipients\"}"),
            1);
  EXPECT_EQ(testing::MetricValue(metrics,
                                 "email_truncations_total{channel=\"postmark\",reason=\"header\"}"),
            1);
}

}  // namespace
}  // namespace leadflow::e2e
