#include "crm-core/domain/activity/activity.h"

#include <gtest/gtest.h>

namespace leadflow::crm {
namespace {

// Protects: an activity a manager planned may have any updatable field changed; one an inbound
// event made keeps the subject and description it came with (a call-back's description is
// rewritten by each further missed call: an edit would be lost), and only those.
TEST(CheckActivityUpdate, InboundActivitiesKeepWhatCameIn) {
  Activity planned{.id = 7, .type = "TASK", .subject = "Call back"};
  EXPECT_TRUE(CheckActivityUpdate(planned, {"subject", "description", "deadline",
                                            "responsible_user_id", "completed"})
                  .ok());

  Activity inbound{.id = 8, .type = "CALL", .subject = "Missed call", .origin_event_id = "call:1"};
  for (const char* field : {"subject", "description"}) {
    absl::Status refused = CheckActivityUpdate(inbound, {field, "deadline"});
    EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << field;
    EXPECT_NE(refused.message().find("inbound event call:1"), std::string::npos)
        << refused.message();
  }
  EXPECT_TRUE(CheckActivityUpdate(inbound, {"deadline", "responsible_user_id", "completed"}).ok());
}

}  // namespace
}  // namespace leadflow::crm
