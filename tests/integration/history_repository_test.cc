// The one writer of the history table (store/history_repository.h) against a real PostgreSQL:
// every shape of entry the write paths append (API field changes, inbound creations naming their
// event, links between records, system entries) is stored and read back alike.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "crm-core/store/history_repository.h"
#include "crm-core/store/migrations.h"
#include "crm-core/store/statements.h"
#include "pg/migrations.h"
#include "pg/pg.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;

class HistoryRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg::ApplyMigrations(database_.url(), Migrations()).ok());
    connection_ = std::make_unique<pqxx::connection>(database_.url());
    pg::PrepareAll(*connection_, Statements());
  }

  testing::TempDatabase database_;
  std::unique_ptr<pqxx::connection> connection_;
};

// Protects: one statement stores a batch of entries of every writer's shape; ids 0 and empty
// texts become NULL (related, user, event) so that the table's constraints hold, and List reads
// them back newest first with the same values.
TEST_F(HistoryRepositoryTest, AppendsEveryWritersShapeAndListsNewestFirst) {
  {
    pqxx::work work(*connection_);
    work.exec0("INSERT INTO users (id, name) VALUES (7, 'Ann')");
    HistoryRecord created = HistoryRecord::Of(EntityKind::kDeal, 5, "CREATED");
    created.event_id = std::string("webform:abc\0def", 15);  // a NUL cannot reach the database
    created.RelatedTo({EntityKind::kContact, 9});
    HistoryRecord changed = HistoryRecord::Of(EntityKind::kDeal, 5, "FIELD_CHANGED");
    changed.field = "title";
    changed.old_value = "Kitchen";
    changed.new_value = "Kitchen and bath";
    changed.user_id = 7;
    HistoryRepository(work).Append(
        {created, changed, HistoryRecord::Of(EntityKind::kDeal, 5, "DELETED")});
    HistoryRepository(work).Append(std::vector<HistoryRecord>{});  // nothing, no statement
    work.commit();
  }
  pqxx::work work(*connection_);
  EXPECT_EQ(
      work.exec1("SELECT count(*) FROM history WHERE kind = 'DELETED' AND related_type IS NULL "
                 "AND related_id IS NULL AND user_id IS NULL AND event_id IS NULL")[0]
          .as<int64_t>(),
      1);
  const std::vector<HistoryRecord> listed = HistoryRepository(work).List("DEAL", 5, 0, 10);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].kind, "DELETED");
  EXPECT_EQ(listed[1].kind, "FIELD_CHANGED");
  EXPECT_EQ(listed[1].field, "title");
  EXPECT_EQ(listed[1].old_value, "Kitchen");
  EXPECT_EQ(listed[1].new_value, "Kitchen and bath");
  EXPECT_EQ(listed[1].user_id, 7);
  EXPECT_EQ(listed[2].kind, "CREATED");
  EXPECT_EQ(listed[2].entity_type, "DEAL");
  EXPECT_EQ(listed[2].related_type, "CONTACT");
  EXPECT_EQ(listed[2].related_id, 9);
  EXPECT_EQ(listed[2].event_id, "webform:abcdef");
  EXPECT_EQ(listed[2].user_id, 0);
  EXPECT_GT(listed[2].at_micros, 0);
  // Paging: below the newest id.
  EXPECT_EQ(HistoryRepository(work).List("DEAL", 5, listed[0].id, 10).size(), 2u);
}

}  // namespace
}  // namespace leadflow::crm
