// Migrations 0027 and 0029: search keys and email identities stored before read, afterwards,
// exactly as the writers now write them (naming's SearchKey and StoredSearchKey,
// identity::NormalizeEmail).

#include <gtest/gtest.h>

#include <unicode/unistr.h>
#include <algorithm>
#include <pqxx/pqxx>
#include <string>
#include <utility>
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

// 0029: a database as the release before it left it (SearchKey's one reading in every key).
class SearchReadingsUpgradeTest : public NamesFoldUpgradeTest {
 protected:
  void SetUp() override {
    absl::StatusOr<int> before = pg::ApplyMigrations(database_.url(), MigrationsUpTo(28));
    ASSERT_TRUE(before.ok()) << before.status();
  }

  // A company, a contact (this first name, `last` as last name) and a lead (the same names, this
  // company name) with the keys the previous release wrote, at `id` each.
  void InsertOld(int64_t id, const std::string& first, const std::string& last) {
    const std::string name = first + (last.empty() ? "" : " " + last);
    auto old_person = [](const std::string& a, const std::string& b) {
      const std::string x = domain::SearchKey(a);
      const std::string y = domain::SearchKey(b);
      return x.empty() ? y : y.empty() ? x : x + " " + y;
    };
    Exec("INSERT INTO companies (id, name, search_name) VALUES ($1, $2, $3)", id, name,
         domain::SearchKey(name));
    Exec(
        "INSERT INTO contacts (id, first_name, last_name, search_first_last, search_last_first) "
        "VALUES ($1, $2, $3, $4, $5)",
        id, first, last, old_person(first, last), old_person(last, first));
    Exec(
        "INSERT INTO leads (id, title, source, first_name, last_name, company_name, search_name, "
        "search_company) VALUES ($1, 't', 'EMAIL', $2, $3, $4, $5, $6)",
        id, first, last, name, old_person(first, last), domain::SearchKey(name));
  }

  std::vector<std::string> Keys(const std::string& column, const std::string& table) {
    return Column("SELECT " + column + " FROM " + table + " ORDER BY id");
  }
};

// Protects: FindByName finds rows stored before 0029 as it finds those written after. Every key
// 0029 rewrites reads as StoredSearchKey / PersonKeys write it now (the SQL copy of the readings
// agrees with the C++): apostrophes and initialisms joined, the German reading of names in
// ASCII and Latin-1 — every one of those characters beside an umlaut, to check the SQL folding of
// each against ICU's — across several batches of ids; a name beyond Latin-1 with an umlaut gets
// its joined readings only (the German one when next saved, as documented); keys without any of
// these are left as they were, and the first reading stays what the previous release searches.
TEST_F(SearchReadingsUpgradeTest, StoredKeysGainTheReadingsTheWritersWrite) {
  std::vector<std::pair<std::string, std::string>> names = {
      {"Boulangerie", "L'Épi d'Or"}, {"A.B.C.", "Conseil"}, {"Jürgen", "O'Neil"},
      {"Müller", "& Söhne"},         {"Léa", "Martin"},     {"", "Ärger"},
      {"Mu\u0308ller", "Ober"},      {"Straße", "Öl"},      {"St.", "Louis"},
  };
  for (char32_t c = 0x20; c <= 0xFF; ++c) {
    if ((c > 0x7E && c < 0xC0) || c == 0xD7 || c == 0xF7) continue;
    icu::UnicodeString one(static_cast<UChar32>(c));
    std::string text;
    one.toUTF8String(text);
    names.push_back({"Mü" + text + "a" + text, "Büro"});
  }
  const size_t compared = names.size();
  names.push_back({"Müller", "Ёлка"});  // beyond Latin-1: no German reading from 0029
  int64_t id = 1;
  for (const auto& [first, last] : names) {
    InsertOld(id, first, last);
    id += 97;  // ids over several batches of 5,000
  }
  // The check must be able to fail: these keys change.
  ASSERT_NE(domain::StoredSearchKey("Müller & Söhne"), domain::SearchKey("Müller & Söhne"));

  Migrate();

  std::vector<std::string> companies, first_last, last_first, lead_names;
  for (size_t i = 0; i < compared; ++i) {
    const auto& [first, last] = names[i];
    const std::string name = first + (last.empty() ? "" : " " + last);
    companies.push_back(domain::StoredSearchKey(name));
    first_last.push_back(domain::PersonKeys(first, last).first_last);
    last_first.push_back(domain::PersonKeys(first, last).last_first);
  }
  auto head = [&](std::vector<std::string> all) {
    all.resize(compared);
    return all;
  };
  EXPECT_EQ(head(Keys("search_name", "companies")), companies);
  EXPECT_EQ(head(Keys("search_company", "leads")), companies);
  EXPECT_EQ(head(Keys("search_first_last", "contacts")), first_last);
  EXPECT_EQ(head(Keys("search_name", "leads")), first_last);
  EXPECT_EQ(head(Keys("search_last_first", "contacts")), last_first);
  EXPECT_EQ(companies[0], "boulangerie l'epi d'or\n boulangerie lepi dor");
  EXPECT_EQ(companies[3], "muller & sohne\n mueller & soehne");
  EXPECT_EQ(companies[4], "lea martin");
  // Beyond Latin-1: the first reading, unchanged (nothing to join).
  EXPECT_EQ(Keys("search_name", "companies").back(), domain::SearchKey("Müller Ёлка"));
  EXPECT_NE(domain::StoredSearchKey("Müller Ёлка"), domain::SearchKey("Müller Ёлка"));
  // The previous release's search (the first reading, at a word start) still finds them.
  EXPECT_EQ(Column("SELECT name FROM companies WHERE search_name LIKE 'muller%' "
                   "OR search_name LIKE '% muller%' ORDER BY id"),
            (std::vector<std::string>{"Müller & Söhne", "Mu\u0308ller Ober", "Müller Ёлка"}));
}

// Protects: 0029 may be stopped and run again (a lock timeout rolls back the batch it was in,
// the batches before stay committed): a key already in the new form is left as it is.
TEST_F(SearchReadingsUpgradeTest, RunningAgainChangesNothing) {
  InsertOld(1, "Jürgen", "O'Neil");
  Migrate();
  const std::vector<std::string> once = Keys("search_first_last", "contacts");
  ASSERT_EQ(once, std::vector<std::string>{domain::PersonKeys("Jürgen", "O'Neil").first_last});
  Exec("DELETE FROM schema_migrations WHERE version = 29");
  Migrate();
  EXPECT_EQ(Keys("search_first_last", "contacts"), once);
}

}  // namespace
}  // namespace leadflow::crm
