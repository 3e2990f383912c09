#include "crm-core/domain/status/status.h"

#include <gtest/gtest.h>

namespace leadflow::crm {
namespace {

std::vector<StatusEntry> Seeded() {
  return {{"NEW", "New", 10, Semantics::kProcess, true},
          {"IN_PROCESS", "In progress", 20, Semantics::kProcess, true},
          {"PROCESSED", "Processed", 30, Semantics::kFailure, true},
          {"CONVERTED", "Converted", 40, Semantics::kSuccess, true},
          {"JUNK", "Junk", 50, Semantics::kFailure, true}};
}

// Protects: only PROCESS statuses are open; the names of the semantics round-trip and unknown
// ones are refused, never defaulted.
TEST(StatusTest, OnlyProcessIsOpen) {
  EXPECT_TRUE(IsOpen(Semantics::kProcess));
  EXPECT_FALSE(IsOpen(Semantics::kSuccess));
  EXPECT_FALSE(IsOpen(Semantics::kFailure));
  for (Semantics semantics : {Semantics::kProcess, Semantics::kSuccess, Semantics::kFailure}) {
    EXPECT_EQ(ParseSemantics(ToString(semantics)), semantics);
  }
  EXPECT_EQ(ParseSemantics("OPEN"), std::nullopt);
}

// Protects: a custom status needs a well-formed new id, a name and semantics; a second SUCCESS
// status is refused naming the existing one; sources take no semantics.
TEST(StatusTest, NewStatusInvariants) {
  const auto seeded = Seeded();
  StatusEntry waiting{"WAITING", "Waiting for a call back", 15, Semantics::kProcess, false};
  EXPECT_TRUE(CheckNewStatus(StatusKind::kLeadStatus, seeded, waiting).ok());
  for (const char* bad : {"", "waiting", "1ST", "WAIT-ING", "W A"}) {
    StatusEntry entry = waiting;
    entry.id = bad;
    EXPECT_EQ(CheckNewStatus(StatusKind::kLeadStatus, seeded, entry).code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  // The rule and the message of stage ids (domain::CheckConfiguredId), value in double quotes.
  waiting.id = "waiting";
  EXPECT_EQ(CheckNewStatus(StatusKind::kLeadStatus, seeded, waiting).message(),
            "status id \"waiting\" must be 1 to 50 upper-case letters, digits or underscores, "
            "starting with a letter");
  waiting.id = "WAITING";
  StatusEntry unnamed = waiting;
  unnamed.name.clear();
  EXPECT_EQ(CheckNewStatus(StatusKind::kLeadStatus, seeded, unnamed).code(),
            absl::StatusCode::kInvalidArgument);
  StatusEntry no_semantics = waiting;
  no_semantics.semantics.reset();
  EXPECT_EQ(CheckNewStatus(StatusKind::kLeadStatus, seeded, no_semantics).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckNewStatus(StatusKind::kSource, {}, waiting).code(),
            absl::StatusCode::kInvalidArgument);
  StatusEntry duplicate = waiting;
  duplicate.id = "JUNK";
  EXPECT_EQ(CheckNewStatus(StatusKind::kLeadStatus, seeded, duplicate).code(),
            absl::StatusCode::kAlreadyExists);
  StatusEntry won = waiting;
  won.semantics = Semantics::kSuccess;
  absl::Status second = CheckNewStatus(StatusKind::kLeadStatus, seeded, won);
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.message().find("CONVERTED"), std::string::npos) << second;
  EXPECT_EQ(NextSort(seeded), 60);
}

// Protects: system statuses are never deleted nor change semantics; a status in use is not
// deleted; a custom one may not become a second SUCCESS.
TEST(StatusTest, DeleteAndSemanticsChange) {
  const auto seeded = Seeded();
  EXPECT_EQ(CheckDeleteStatus(seeded[4], 0).code(), absl::StatusCode::kFailedPrecondition);
  StatusEntry custom{"WAITING", "Waiting", 15, Semantics::kProcess, false};
  EXPECT_EQ(CheckDeleteStatus(custom, 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckDeleteStatus(custom, 0).ok());
  EXPECT_EQ(CheckSemanticsChange(seeded, seeded[0], Semantics::kFailure).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckSemanticsChange(seeded, custom, Semantics::kFailure).ok());
  EXPECT_EQ(CheckSemanticsChange(seeded, custom, Semantics::kSuccess).code(),
            absl::StatusCode::kFailedPrecondition);
}

// Protects: no status with SUCCESS semantics is set by hand, whatever its id (the conversion
// status is only set by ConvertLead); every other status is.
TEST(StatusTest, OnlyConversionSetsTheSuccessStatus) {
  for (const StatusEntry& status : Seeded()) {
    EXPECT_EQ(CheckManualStatus(status).ok(), status.semantics != Semantics::kSuccess) << status.id;
  }
  const StatusEntry renamed{"WON_LEAD", "Won", 45, Semantics::kSuccess, false};
  const absl::Status refused = CheckManualStatus(renamed);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("use ConvertLead"), std::string_view::npos);
}

// Protects: status names are unique as stage names are ("new" and " NÉW " are "New"), a status
// keeping its own name is no clash; open statuses come before closed ones: moving NEW after JUNK
// or a FAILURE status before IN_PROCESS is refused naming both, an open status created without
// a sort lands between the last open and the first closed one.
TEST(StatusTest, NamesAreUniqueAndOpenStatusesComeFirst) {
  const std::vector<StatusEntry> seeded = Seeded();
  for (const char* name : {"new", " NÉW "}) {
    absl::Status taken = CheckStatusName(seeded, "", name);
    EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists) << name;
    EXPECT_EQ(taken.message(), R"("NEW" is named "New" already)");
  }
  EXPECT_TRUE(CheckStatusName(seeded, "NEW", "NEW").ok());
  EXPECT_TRUE(CheckStatusName(seeded, "", "Call later").ok());

  std::vector<StatusEntry> moved = seeded;
  moved[0].sort = 999;
  absl::Status late = CheckStatusOrder(moved, "NEW");
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      late.message(),
      R"("NEW" (PROCESS, sort 999) would not come before "PROCESSED" (FAILURE, sort 30): open )"
      "statuses come first, then the closed ones");
  moved = seeded;
  moved[4].sort = 15;
  EXPECT_EQ(CheckStatusOrder(moved, "JUNK").message(),
            R"("IN_PROCESS" (PROCESS, sort 20) would not come before "JUNK" (FAILURE, sort 15): )"
            "open statuses come first, then the closed ones");
  moved[4].sort = 60;  // closed statuses among themselves: any order
  EXPECT_TRUE(CheckStatusOrder(moved, "JUNK").ok());

  EXPECT_EQ(NextSort(seeded, Semantics::kProcess), 25);
  EXPECT_EQ(NextSort(seeded, Semantics::kFailure), 60);
  EXPECT_EQ(NextSort(seeded, std::nullopt), 60);
  StatusEntry placed{"CALL_LATER", "Call later", NextSort(seeded, Semantics::kProcess),
                     Semantics::kProcess, false};
  std::vector<StatusEntry> with = seeded;
  with.push_back(placed);
  EXPECT_TRUE(CheckStatusOrder(with, "CALL_LATER").ok());
}

}  // namespace
}  // namespace leadflow::crm
