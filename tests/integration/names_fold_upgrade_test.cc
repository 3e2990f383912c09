// Migration 0027: search keys and email identities stored before this release read, afterwards,
// exactly as the writers now write them (naming's SearchKey, identity::NormalizeEmail).

#include <gtest/gtest.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/migrations.h"
#include "identity/identity.h"
#include "pg/migrations.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

// The newest migration before 0027.
constexpr int kBefore = 26;

class NamesFoldUpgradeTest : public testing::CrmUpgradeTest {
 protected:
  NamesFoldUpgradeTest() : CrmUpgradeTest(kBefore) {}

  template <class... Values>
  void Exec(const std::string& sql, const Values&... values) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec_params(sql, values...);
    work.commit();
  }

  std::vector<std::string> Column(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::read_transaction work(connection);
    std::vector<std::string> values;
    for (const auto& row : work.exec(sql)) values.push_back(row[0].as<std::string>());
    return values;
  }
};

// Protects: FindByName finds what was stored before the upgrade as it finds what is stored after.
// Each name's keys as the previous release wrote them (FoldForSearch: emoji kept) read, after
// 0027, exactly as SearchKey writes them now — the SQL copy of the dropped set agrees with ICU's —
// and keys without such characters are left as they were.
TEST_F(NamesFoldUpgradeTest, StoredSearchKeysReadAsSearchKeyWritesThem) {
  const std::vector<std::string> names = {
      "Pe\U0001F468\u200D\U0001F469\u200D\U0001F467ña",  // a ZWJ family inside a word
      "Jean \U0001F389 Dupont",                          // an emoji between words
      "\U0001F44D\U0001F3FDMarc",                        // a skin tone
      "Anne\U0001F1EB\U0001F1F7",                        // a flag
      "Lot 1\uFE0F\u20E3",                               // a keycap
      "Ян\U0001F3F4\U000E0067\U000E0062\U000E007F",      // a tag sequence
      "O^Brien `Jr`",                                    // ASCII modifier symbols
      "\u0645\u0640\u0640\u062D\u0645\u062F \u00A9",     // Arabic with a tatweel, ©
      "Léa Martin",                                      // nothing to drop
      "山田 太郎",
  };
  for (const std::string& name : names) {
    const std::string old_key = domain::FoldForSearch(name);
    Exec(
        "INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first) "
        "VALUES ($1, 'X', $2, $2)",
        name, old_key);
    Exec("INSERT INTO companies (name, search_name) VALUES ($1, $2)", name, old_key);
    Exec(
        "INSERT INTO leads (title, source, search_name, search_company) "
        "VALUES ('t', 'EMAIL', $1, $1)",
        old_key);
  }
  // The check must be able to fail: most keys held a character to drop.
  ASSERT_NE(domain::FoldForSearch(names[0]), domain::SearchKey(names[0]));

  Migrate();

  std::vector<std::string> expected;
  for (const std::string& name : names) expected.push_back(domain::SearchKey(name));
  EXPECT_EQ(Column("SELECT search_first_last FROM contacts ORDER BY id"), expected);
  EXPECT_EQ(Column("SELECT search_last_first FROM contacts ORDER BY id"), expected);
  EXPECT_EQ(Column("SELECT search_name FROM companies ORDER BY id"), expected);
  EXPECT_EQ(Column("SELECT search_name FROM leads ORDER BY id"), expected);
  EXPECT_EQ(Column("SELECT search_company FROM leads ORDER BY id"), expected);
  EXPECT_EQ(expected[0], "pena");
}

// Protects: one person, one identity across the upgrade. Email addresses stored with capitals
// beyond ASCII in their local part read, after 0027, as identity::NormalizeEmail writes them, so
// mail from "i̇nci@örnek.example" matches the record stored as "İnci@örnek.example"; a record
// holding two spellings of one address keeps one row; ASCII addresses are untouched.
TEST_F(NamesFoldUpgradeTest, StoredLocalPartsReadAsNormalizeEmailWritesThem) {
  const std::vector<std::string> stored = {
      "İnci@örnek.example", "JOSÉ@exämple.com",  "ＪＯＳＥ@example.com", "ΕΛΈΝΗ@example.gr",
      "Straße@example.de",  "plain@example.com", "ДМИТРИЙ@пример.рф",
  };
  Exec("INSERT INTO leads (id, title, source) VALUES (1, 'lead', 'EMAIL')");
  Exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first) "
      "VALUES (1, 'X', 'x', 'x'), (2, 'Y', 'y', 'y')");
  Exec("INSERT INTO companies (id, name, search_name) VALUES (1, 'Z', 'z')");
  for (const std::string& value : stored) {
    Exec("INSERT INTO lead_identities (kind, value, lead_id) VALUES ('EMAIL', $1, 1)", value);
    Exec("INSERT INTO contact_identities (kind, value, contact_id) VALUES ('EMAIL', $1, 1)", value);
    Exec("INSERT INTO company_identities (kind, value, company_id) VALUES ('EMAIL', $1, 1)", value);
  }
  // Contact 2 holds three spellings of one address.
  for (const std::string value :
       {"İnci@örnek.example", "İNCI@örnek.example", "i\u0307nci@örnek.example"}) {
    Exec("INSERT INTO contact_identities (kind, value, contact_id) VALUES ('EMAIL', $1, 2)", value);
  }

  Migrate();

  std::vector<std::string> expected;
  for (const std::string& value : stored) {
    absl::StatusOr<std::string> normalized = identity::NormalizeEmail(value);
    ASSERT_TRUE(normalized.ok()) << value << ": " << normalized.status();
    expected.push_back(*normalized);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_NE(expected, std::vector<std::string>(stored.begin(), stored.end()));
  const std::string order = " ORDER BY value COLLATE \"C\"";
  EXPECT_EQ(Column("SELECT value FROM lead_identities WHERE lead_id = 1" + order), expected);
  EXPECT_EQ(Column("SELECT value FROM contact_identities WHERE contact_id = 1" + order), expected);
  EXPECT_EQ(Column("SELECT value FROM company_identities WHERE company_id = 1" + order), expected);
  EXPECT_EQ(Column("SELECT value FROM contact_identities WHERE contact_id = 2"),
            std::vector<std::string>{"i\u0307nci@örnek.example"});
}

}  // namespace
}  // namespace leadflow::crm
