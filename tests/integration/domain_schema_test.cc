// The CRM domain's schema (migrations/0004_domain.sql) on a real PostgreSQL: it applies on top of
// 0001–0003 with existing data, seeds the default pipeline and settings exactly as the domain
// defines them, and refuses the invalid states its constraints exist for.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "crm-core/domain/pipeline/pipeline.h"
#include "crm-core/store/migrations.h"
#include "pg/migrations.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

std::vector<pg::Migration> Pick(std::initializer_list<int> versions) {
  std::vector<pg::Migration> picked;
  for (const pg::Migration& migration : Migrations()) {
    if (std::find(versions.begin(), versions.end(), migration.version) != versions.end()) {
      picked.push_back(migration);
    }
  }
  return picked;
}

class DomainSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg::ApplyMigrations(database_.url(), Pick({1, 2, 3})).ok());
    connection_ = std::make_unique<pqxx::connection>(database_.url());
    // A lead and a user from before the domain tables existed.
    Exec("INSERT INTO users (id, name) VALUES (1, 'Ana')");
    Exec("INSERT INTO leads (id, title, source) VALUES (1, 'Existing lead', 'EMAIL')");
    absl::StatusOr<int> applied = pg::ApplyMigrations(database_.url(), Pick({1, 2, 3, 4}));
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(*applied, 1);
  }

  void Exec(const std::string& sql) {
    pqxx::work work(*connection_);
    work.exec(sql);
    work.commit();
  }

  pqxx::result Query(const std::string& sql) {
    pqxx::work work(*connection_);
    pqxx::result result = work.exec(sql);
    work.commit();
    return result;
  }

  // The SQLSTATE a statement fails with, "" when it succeeds (and is committed).
  std::string StateOf(const std::string& sql) {
    try {
      Exec(sql);
      return "";
    } catch (const pqxx::sql_error& error) {
      return error.sqlstate();
    }
  }

  static constexpr char kCheck[] = "23514";
  static constexpr char kForeignKey[] = "23503";
  static constexpr char kUnique[] = "23505";

  // A second pipeline with its own stages; returns its id.
  int64_t SecondPipeline() {
    pqxx::result r = Query("INSERT INTO pipelines (name) VALUES ('Interior works') RETURNING id");
    int64_t id = r[0][0].as<int64_t>();
    Exec("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) VALUES (" +
         std::to_string(id) + ", 'C2:NEW', 'Survey', 10, 'PROCESS'), (" + std::to_string(id) +
         ", 'WON', 'Done', 20, 'SUCCESS'), (" + std::to_string(id) +
         ", 'LOSE', 'Cancelled', 30, 'FAILURE')");
    return id;
  }

  testing::TempDatabase database_;
  std::unique_ptr<pqxx::connection> connection_;
};

// Protects: the seeded default pipeline is the domain's DefaultPipeline() (same ids, names,
// order, semantics), the settings row points at it, and the queues exist.
TEST_F(DomainSchemaTest, SeedsMatchTheDomain) {
  domain::Pipeline expected = domain::DefaultPipeline();
  pqxx::result pipeline = Query("SELECT id, name FROM pipelines");
  ASSERT_EQ(pipeline.size(), 1u);
  EXPECT_EQ(pipeline[0][0].as<int64_t>(), expected.id);
  EXPECT_EQ(pipeline[0][1].as<std::string>(), expected.name);
  pqxx::result stages = Query(
      "SELECT id, name, sort, semantics, idle_days IS NULL FROM pipeline_stages "
      "WHERE pipeline_id = 1 ORDER BY sort");
  ASSERT_EQ(stages.size(), expected.stages.size());
  for (size_t i = 0; i < stages.size(); ++i) {
    const domain::Stage& stage = expected.stages[i];
    EXPECT_EQ(stages[i][0].as<std::string>(), stage.id);
    EXPECT_EQ(stages[i][1].as<std::string>(), stage.name);
    EXPECT_EQ(stages[i][2].as<int>(), stage.sort);
    EXPECT_EQ(stages[i][3].as<std::string>(), domain::ToString(stage.semantics));
    EXPECT_TRUE(stages[i][4].as<bool>());
  }
  pqxx::result settings = Query(
      "SELECT mode, lead_title_template, last_name_placeholder, inbound_pipeline_id, "
      "repeat_rule, default_currency FROM crm_settings");
  ASSERT_EQ(settings.size(), 1u);
  EXPECT_EQ(settings[0][0].as<std::string>(), "CLASSIC");
  EXPECT_EQ(settings[0][1].as<std::string>(), "{city} – {name} – {need}");
  EXPECT_EQ(settings[0][2].as<std::string>(), "Unknown");
  EXPECT_EQ(settings[0][3].as<int64_t>(), 1);
  EXPECT_TRUE(settings[0][4].as<bool>());
  EXPECT_EQ(settings[0][5].as<std::string>(), "EUR");
  EXPECT_EQ(Query("SELECT count(*) FROM assignment_queues")[0][0].as<int>(), 6);
  // The lead from before is intact and got the new columns' defaults.
  pqxx::result lead = Query("SELECT title, search_name, contact_id IS NULL FROM leads");
  ASSERT_EQ(lead.size(), 1u);
  EXPECT_EQ(lead[0][0].as<std::string>(), "Existing lead");
  EXPECT_EQ(lead[0][1].as<std::string>(), "");
  EXPECT_TRUE(lead[0][2].as<bool>());
  // A new pipeline gets ids from after the seeded one.
  EXPECT_EQ(SecondPipeline(), 2);
}

// Protects: a deal can only sit in a stage of its own pipeline, with that stage's semantics, and
// its closed flag follows the stage; a stage holding deals cannot be deleted.
TEST_F(DomainSchemaTest, DealsStayInTheirPipelinesStages) {
  int64_t second = SecondPipeline();
  EXPECT_EQ(StateOf("INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics) "
                    "VALUES ('Wrong pipeline', 1, 'C2:NEW', 'PROCESS')"),
            kForeignKey);
  EXPECT_EQ(StateOf("INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics) "
                    "VALUES ('Claims closed', 1, 'NEW', 'SUCCESS')"),
            kForeignKey);
  EXPECT_EQ(StateOf("INSERT INTO deals (id, title, pipeline_id, stage_id, stage_semantics) "
                    "VALUES (10, 'Windows', 1, 'NEW', 'PROCESS')"),
            "");
  EXPECT_FALSE(Query("SELECT closed FROM deals WHERE id = 10")[0][0].as<bool>());
  Exec("UPDATE deals SET stage_id = 'WON', stage_semantics = 'SUCCESS' WHERE id = 10");
  EXPECT_TRUE(Query("SELECT closed FROM deals WHERE id = 10")[0][0].as<bool>());
  EXPECT_EQ(StateOf("UPDATE deals SET closed = false WHERE id = 10"), "428C9");  // generated
  // Moving across pipelines names a stage of the target pipeline.
  EXPECT_EQ(StateOf("UPDATE deals SET pipeline_id = " + std::to_string(second) + " WHERE id = 10"),
            "");  // WON exists in both pipelines: a legal move
  EXPECT_EQ(StateOf("UPDATE deals SET pipeline_id = 1, stage_id = 'C2:NEW' WHERE id = 10"),
            kForeignKey);
  EXPECT_EQ(StateOf("DELETE FROM pipeline_stages WHERE pipeline_id = " + std::to_string(second) +
                    " AND id = 'WON'"),
            kForeignKey);
  EXPECT_EQ(StateOf("DELETE FROM pipelines WHERE id = " + std::to_string(second)), kForeignKey);
  // Changing a stage's semantics carries into its deals.
  Exec(
      "UPDATE deals SET pipeline_id = 1, stage_id = 'NEW', stage_semantics = 'PROCESS' "
      "WHERE id = 10");
  Exec("UPDATE pipeline_stages SET semantics = 'FAILURE' WHERE pipeline_id = 1 AND id = 'NEW'");
  EXPECT_TRUE(Query("SELECT closed FROM deals WHERE id = 10")[0][0].as<bool>());
}

// Protects: one SUCCESS stage per pipeline, unique stage ids, names and positions (reordering
// inside one transaction still works), well-formed ids and idle thresholds.
TEST_F(DomainSchemaTest, StageConstraints) {
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'WON2', 'Won again', 80, 'SUCCESS')"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'NEW', 'Another', 80, 'PROCESS')"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'X', ' won ', 80, 'FAILURE')"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'X', 'X', 10, 'FAILURE')"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'has space', 'X', 80, 'FAILURE')"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'X', 'X', 80, 'MAYBE')"),
            kCheck);
  EXPECT_EQ(StateOf("UPDATE pipeline_stages SET idle_days = 0 WHERE id = 'NEW'"), kCheck);
  EXPECT_EQ(StateOf("UPDATE pipeline_stages SET name = ' ' WHERE id = 'NEW'"), kCheck);
  EXPECT_EQ(StateOf("INSERT INTO pipelines (name) VALUES ('  SALES ')"), kUnique);
  // Swapping two positions in one transaction: the uniqueness is checked at commit.
  pqxx::work work(*connection_);
  work.exec("SET CONSTRAINTS pipeline_stages_sort DEFERRED");
  work.exec("UPDATE pipeline_stages SET sort = 20 WHERE pipeline_id = 1 AND id = 'NEW'");
  work.exec("UPDATE pipeline_stages SET sort = 10 WHERE pipeline_id = 1 AND id = 'PREPARATION'");
  work.commit();
  EXPECT_EQ(
      Query("SELECT id FROM pipeline_stages WHERE pipeline_id = 1 ORDER BY sort LIMIT 1")[0][0]
          .as<std::string>(),
      "PREPARATION");
}

// Protects: records cannot hold a blank required name, invalid money, a bad identity, a link
// twice, or be merged into themselves; settings stay one valid row.
TEST_F(DomainSchemaTest, RecordConstraints) {
  EXPECT_EQ(StateOf("INSERT INTO contacts (first_name, last_name, search_first_last, "
                    "search_last_first) VALUES ('Marie', ' ', 'marie', 'marie')"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO contacts (id, first_name, last_name, search_first_last, "
                    "search_last_first) VALUES (1, 'Marie', 'Unknown', 'marie unknown', "
                    "'unknown marie')"),
            "");
  EXPECT_EQ(StateOf("UPDATE contacts SET merged_into = 1 WHERE id = 1"), kCheck);
  EXPECT_EQ(StateOf("INSERT INTO contact_identities VALUES ('FAX', '+331', 1)"), kCheck);
  EXPECT_EQ(StateOf("INSERT INTO contact_identities VALUES ('EMAIL', '', 1)"), kCheck);
  EXPECT_EQ(StateOf("INSERT INTO contact_identities VALUES ('EMAIL', 'm@c.fr', 1)"), "");
  EXPECT_EQ(StateOf("INSERT INTO contact_identities VALUES ('EMAIL', 'm@c.fr', 1)"), kUnique);
  EXPECT_EQ(StateOf("INSERT INTO companies (name, search_name) VALUES ('', '')"), kCheck);
  EXPECT_EQ(StateOf("INSERT INTO companies (id, name, search_name) VALUES (1, 'Curie', 'curie')"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO contact_companies VALUES (1, 1, 'CEO')"), "");
  EXPECT_EQ(StateOf("INSERT INTO contact_companies VALUES (1, 1, 'Accountant')"), kUnique);
  for (std::string money : {"-1, 'EUR'", "1, 'eur'", "1, 'EU1'", "1000000000000001, 'EUR'"}) {
    EXPECT_EQ(StateOf("INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, "
                      "amount_minor, currency) VALUES ('D', 1, 'NEW', 'PROCESS', " +
                      money + ")"),
              kCheck)
        << money;
  }
  EXPECT_EQ(StateOf("INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics) "
                    "VALUES (' ', 1, 'NEW', 'PROCESS')"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO crm_settings (id, inbound_pipeline_id) VALUES (2, 1)"), kCheck);
  EXPECT_EQ(StateOf("UPDATE crm_settings SET mode = 'MIXED'"), kCheck);
  EXPECT_EQ(StateOf("UPDATE crm_settings SET last_name_placeholder = ''"), kCheck);
  EXPECT_EQ(StateOf("UPDATE crm_settings SET inbound_pipeline_id = 99"), kForeignKey);
  EXPECT_EQ(StateOf("DELETE FROM pipelines WHERE id = 1"), kForeignKey);  // the inbound one
}

// Protects: a lead converts at most once and a request id names one conversion; a record is
// folded at most once; history entries carry what their kind needs; one mode switch at a time.
TEST_F(DomainSchemaTest, OnceOnlyRecords) {
  Exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first) "
      "VALUES (1, 'Curie', 'curie', 'curie')");
  Exec("INSERT INTO leads (id, title, source) VALUES (2, 'Second', 'CALL')");
  EXPECT_EQ(StateOf("INSERT INTO conversions (request_id, lead_id, produce, contact_id) "
                    "VALUES ('r-1', 1, 'CONTACT', 1)"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO conversions (request_id, lead_id, produce, contact_id) "
                    "VALUES ('r-2', 1, 'CONTACT', 1)"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO conversions (request_id, lead_id, produce, contact_id) "
                    "VALUES ('r-1', 2, 'CONTACT', 1)"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO conversions (lead_id, produce) VALUES (2, 'EVERYTHING')"), kCheck);
  EXPECT_EQ(StateOf("INSERT INTO merges (entity_type, folded_id, kept_id) VALUES "
                    "('CONTACT', 5, 1)"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO merges (entity_type, folded_id, kept_id) VALUES "
                    "('CONTACT', 5, 2)"),
            kUnique);
  EXPECT_EQ(StateOf("INSERT INTO merges (entity_type, folded_id, kept_id) VALUES "
                    "('CONTACT', 3, 3)"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO merges (entity_type, folded_id, kept_id) VALUES "
                    "('DEAL', 3, 4)"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO history (entity_type, entity_id, kind) VALUES "
                    "('DEAL', 1, 'FIELD_CHANGED')"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO history (entity_type, entity_id, kind) VALUES "
                    "('CONTACT', 1, 'MERGED')"),
            kCheck);
  EXPECT_EQ(StateOf("INSERT INTO history (entity_type, entity_id, kind, related_type, related_id) "
                    "VALUES ('CONTACT', 1, 'MERGED', 'CONTACT', 5)"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')"), "");
  EXPECT_EQ(StateOf("INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')"), kUnique);
  EXPECT_EQ(StateOf("UPDATE mode_switch_jobs SET state = 'DONE'"), kCheck);  // no finished_at
  EXPECT_EQ(StateOf("UPDATE mode_switch_jobs SET state = 'DONE', finished_at = now()"), "");
  EXPECT_EQ(StateOf("INSERT INTO mode_switch_jobs (to_mode) VALUES ('CLASSIC')"), "");
}

// Protects (migration 0007, rolling upgrade): contacts, companies and deals name a known source or
// none. Rows written before it keep their source: a known one as it is, '' as none, a well-formed
// unknown id as a new custom source, and anything else cleared with its old value in the record's
// history; nothing is dropped silently. Afterwards what the previous release writes ('' or a known
// id) is still accepted, an unknown id is refused by the foreign key, and a source in use cannot be
// deleted.
TEST_F(DomainSchemaTest, SourcesOfContactsCompaniesAndDealsAreForeignKeys) {
  Exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first, source_id) "
      "VALUES (1, 'Curie', 'curie', 'curie', ''), (2, 'Curie', 'curie', 'curie', 'EMAIL'), "
      "(3, 'Curie', 'curie', 'curie', 'PARTNER_SITE'), (4, 'Curie', 'curie', 'curie', 'salon "
      "2026')");
  Exec(
      "INSERT INTO companies (id, name, search_name, source_id) VALUES (1, 'Acme', 'acme', "
      "'FAIR')");
  Exec(
      "INSERT INTO deals (id, title, pipeline_id, stage_id, stage_semantics, source_id) "
      "VALUES (1, 'Kitchen', 1, 'NEW', 'PROCESS', 'Référence'), "
      "(2, 'Bath', 1, 'NEW', 'PROCESS', 'PARTNER_SITE')");
  absl::StatusOr<int> applied = pg::ApplyMigrations(database_.url(), Migrations());
  ASSERT_TRUE(applied.ok()) << applied.status();

  EXPECT_EQ(
      Query("SELECT string_agg(source_id || '/' || coalesce(source_ref, '-'), ',' ORDER BY id) "
            "FROM contacts")[0][0]
          .as<std::string>(),
      "/-,EMAIL/EMAIL,PARTNER_SITE/PARTNER_SITE,/-");
  EXPECT_EQ(Query("SELECT string_agg(id || ':' || name || ':' || system, ',' ORDER BY id) "
                  "FROM lead_sources WHERE NOT system")[0][0]
                .as<std::string>(),
            "FAIR:FAIR:false,PARTNER_SITE:PARTNER_SITE:false");
  EXPECT_EQ(Query("SELECT source_id FROM companies WHERE id = 1")[0][0].as<std::string>(), "FAIR");
  EXPECT_EQ(Query("SELECT string_agg(entity_type || entity_id || ':' || old_value, ',' "
                  "ORDER BY entity_type) FROM history WHERE kind = 'FIELD_CHANGED' AND "
                  "field = 'source_id' AND new_value = ''")[0][0]
                .as<std::string>(),
            "CONTACT4:salon 2026,DEAL1:Référence");

  // What the previous release writes still goes in; an unknown source does not.
  EXPECT_EQ(StateOf("INSERT INTO contacts (id, last_name, search_first_last, search_last_first, "
                    "source_id) VALUES (5, 'Old', 'old', 'old', '')"),
            "");
  EXPECT_EQ(StateOf("UPDATE deals SET source_id = 'WEB_FORM' WHERE id = 1"), "");
  EXPECT_EQ(StateOf("UPDATE deals SET source_id = 'NOPE' WHERE id = 1"), kForeignKey);
  EXPECT_EQ(
      StateOf(
          "INSERT INTO companies (id, name, search_name, source_id) VALUES (2, 'B', 'b', 'NOPE')"),
      kForeignKey);
  EXPECT_EQ(StateOf("DELETE FROM lead_sources WHERE id = 'PARTNER_SITE'"), kForeignKey);
  EXPECT_EQ(StateOf("DELETE FROM lead_sources WHERE id = 'FAIR'"), kForeignKey);
  EXPECT_EQ(StateOf("UPDATE companies SET source_id = '' WHERE id = 1"), "");
  EXPECT_EQ(StateOf("DELETE FROM lead_sources WHERE id = 'FAIR'"), "");
}

}  // namespace
}  // namespace leadflow::crm
