// Migration 0022: email identities stored with an A-label domain before identity::NormalizeEmail
// kept internationalised domains in Unicode are rewritten to the form every writer now produces.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/store/migrations.h"
#include "identity/identity.h"
#include "pg/migrations.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

// The newest migration before 0022.
constexpr int kBefore = 21;

class EmailIdentityUpgradeTest : public testing::CrmUpgradeTest {
 protected:
  EmailIdentityUpgradeTest() : CrmUpgradeTest(kBefore) {}

  void Exec(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec(sql);
    work.commit();
  }

  void Exec(const std::string& sql, const std::string& value) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec_params(sql, value);
    work.commit();
  }

  std::vector<std::string> Values(const std::string& table, const std::string& owner, int id) {
    pqxx::connection connection(database_.url());
    pqxx::read_transaction work(connection);
    std::vector<std::string> values;
    for (const auto& row :
         work.exec_params("SELECT value FROM " + table + " WHERE kind = 'EMAIL' AND " + owner +
                              " = $1 ORDER BY value COLLATE \"C\"",
                          id)) {
      values.push_back(row[0].as<std::string>());
    }
    return values;
  }
};

// Protects: one person, one record across the upgrade. An address the API or a web form stored
// with an A-label reads, after 0022, exactly as identity::NormalizeEmail (ICU's UTS #46) now
// writes it, so mail from that person matches the record instead of making a second one; an
// address NormalizeEmail keeps as written (an undecodable or non-IDNA label) is left alone.
TEST_F(EmailIdentityUpgradeTest, StoredALabelsReadAsNormalizeEmailWritesThem) {
  const std::vector<std::string> stored = {
      "max@xn--bcher-kva.example",             // bücher
      "info@xn--mnchen-3ya.xn--bcher-kva.de",  // münchen.bücher: two labels
      "sales@shop.xn--p1ai",                   // .рф
      "a@xn--r8jz45g.xn--zckzah",              // 例え.テスト
      "kontakt@xn--80ak6aa92e.com",            // Cyrillic letters only
      "x@xn--mller-kva.xn--p1ai",
      "a@xn--zz-.example",          // decodes to ASCII: not an A-label IDNA makes
      "a@xn--a-ecp.example",        // a valid Punycode of an unmapped upper-case letter
      "a@xn--99999999999.example",  // overflows: not Punycode
      "a@xn--ab_cd.example",        // a character Punycode has no digit for
      "plain@example.com",
  };
  Exec("INSERT INTO leads (id, title, source) VALUES (1, 'IDN lead', 'EMAIL')");
  Exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first) "
      "VALUES (1, 'Müller', 'muller', 'muller')");
  Exec("INSERT INTO companies (id, name, search_name) VALUES (1, 'Bücher GmbH', 'bucher gmbh')");
  for (const std::string& value : stored) {
    Exec("INSERT INTO lead_identities (kind, value, lead_id) VALUES ('EMAIL', $1, 1)", value);
    Exec("INSERT INTO contact_identities (kind, value, contact_id) VALUES ('EMAIL', $1, 1)", value);
    Exec("INSERT INTO company_identities (kind, value, company_id) VALUES ('EMAIL', $1, 1)", value);
  }

  Migrate();

  std::vector<std::string> expected;
  for (const std::string& value : stored) {
    absl::StatusOr<std::string> normalized = identity::NormalizeEmail(value);
    ASSERT_TRUE(normalized.ok()) << value << ": " << normalized.status();
    expected.push_back(*normalized);
  }
  std::sort(expected.begin(), expected.end());
  // The check must be able to fail: ICU decodes most of them.
  EXPECT_THAT(expected, ::testing::Contains("max@bücher.example"));
  EXPECT_THAT(expected, ::testing::Contains("a@例え.テスト"));
  EXPECT_THAT(expected, ::testing::Contains("a@xn--zz-.example"));
  EXPECT_EQ(Values("lead_identities", "lead_id", 1), expected);
  EXPECT_EQ(Values("contact_identities", "contact_id", 1), expected);
  EXPECT_EQ(Values("company_identities", "company_id", 1), expected);
}

// Protects: a record that held both forms of one address keeps one row (the Unicode one), and
// another record's rows are untouched by the rewrite of this one's.
TEST_F(EmailIdentityUpgradeTest, BothFormsOnOneRecordBecomeOneRow) {
  Exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first) "
      "VALUES (1, 'Müller', 'muller', 'muller'), (2, 'Other', 'other', 'other')");
  Exec(
      "INSERT INTO contact_identities (kind, value, contact_id) VALUES "
      "('EMAIL', 'max@xn--bcher-kva.example', 1), ('EMAIL', 'max@bücher.example', 1), "
      "('PHONE', '+4930123456', 1), ('EMAIL', 'max@xn--bcher-kva.example', 2)");

  Migrate();

  EXPECT_EQ(Values("contact_identities", "contact_id", 1),
            std::vector<std::string>{"max@bücher.example"});
  EXPECT_EQ(Values("contact_identities", "contact_id", 2),
            std::vector<std::string>{"max@bücher.example"});
  pqxx::connection connection(database_.url());
  pqxx::read_transaction work(connection);
  EXPECT_EQ(work.exec1("SELECT count(*) FROM contact_identities WHERE kind = 'PHONE'")[0].as<int>(),
            1);
}

// Protects: an address stored with an A-label that decodes to a character IDNA2008 disallows
// (xn--stanbul-cja, "stanb§ul") stays stored — 0022 decoded it, 0027 changes no domain: a stored
// identity is never dropped by an upgrade — while NormalizeEmail now refuses it in either form,
// so no new record or match is made with it.
TEST_F(EmailIdentityUpgradeTest, DisallowedDomainStaysStoredAndIsRefusedFromNowOn) {
  Exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first) "
      "VALUES (1, 'Kaya', 'kaya', 'kaya')");
  Exec("INSERT INTO contact_identities (kind, value, contact_id) VALUES ('EMAIL', $1, 1)",
       std::string("a@xn--stanbul-cja.example"));

  Migrate();

  EXPECT_EQ(Values("contact_identities", "contact_id", 1),
            std::vector<std::string>{"a@stanb§ul.example"});
  EXPECT_FALSE(identity::NormalizeEmail("a@xn--stanbul-cja.example").ok());
  EXPECT_FALSE(identity::NormalizeEmail("a@stanb§ul.example").ok());
}

}  // namespace
}  // namespace leadflow::crm
