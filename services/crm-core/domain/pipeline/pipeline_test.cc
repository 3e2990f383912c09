// Protects: every pipeline keeps its invariants (exactly one SUCCESS stage, at least one FAILURE
// and one PROCESS stage, PROCESS stages first, unique non-blank ids and names, a bounded number
// of stages) through every edit, and a stage holding deals cannot be removed.

#include "crm-core/domain/pipeline/pipeline.h"

#include <gtest/gtest.h>

namespace leadflow::crm::domain {
namespace {

Stage MakeStage(std::string id, std::string name, Semantics semantics = Semantics::kProcess) {
  return Stage{.id = std::move(id), .name = std::move(name), .sort = 0, .semantics = semantics};
}

std::vector<std::string> Ids(const Pipeline& pipeline) {
  std::vector<std::string> ids;
  for (const Stage& stage : pipeline.stages) ids.push_back(stage.id);
  return ids;
}

TEST(DefaultPipeline, Bitrix24Stages) {
  Pipeline pipeline = DefaultPipeline();
  EXPECT_TRUE(Validate(pipeline).ok());
  EXPECT_EQ(Ids(pipeline), (std::vector<std::string>{"NEW", "PREPARATION", "PREPAYMENT_INVOICE",
                                                     "EXECUTING", "FINAL_INVOICE", "WON", "LOSE"}));
  EXPECT_EQ(pipeline.stages[1].name, "Preparation of documents");
  EXPECT_EQ(pipeline.stages[5].semantics, Semantics::kSuccess);
  EXPECT_EQ(pipeline.stages[6].semantics, Semantics::kFailure);
  EXPECT_EQ(pipeline.stages[0].sort, 10);
  EXPECT_EQ(pipeline.stages[6].sort, 70);
  EXPECT_EQ(FirstStage(pipeline).id, "NEW");
}

// Protects: stage ids follow the rule of lead status ids, by the same function (upper-case
// letters, digits and underscores, starting with a letter, at most 50): "brief", "c1:new",
// "2ND" and a 51-character id are refused for a new stage and in a new pipeline, with the
// message a status id gets; a stage made before the rule ("brief", still in a database) keeps
// working: found, renamed, reordered, removed, and a pipeline holding it still takes new stages.
TEST(StageIds, FollowTheStatusIdRule) {
  const Pipeline base = DefaultPipeline();
  for (const std::string& id : {std::string("brief"), std::string("c1:new"), std::string("2ND"),
                                std::string("SITE-VISIT"), std::string(51, 'A')}) {
    auto added = AddStage(base, MakeStage(id, "Step"));
    ASSERT_FALSE(added.ok()) << id;
    EXPECT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(added.status().message(), CheckConfiguredId("stage id", id).message());
    EXPECT_EQ(CheckConfiguredId("status id", id).code(), absl::StatusCode::kInvalidArgument);
    Pipeline created = DefaultPipeline(0, "New one");
    created.stages[1].id = id;
    EXPECT_EQ(Validate(created).code(), absl::StatusCode::kInvalidArgument) << id;
  }
  EXPECT_EQ(AddStage(base, MakeStage("brief", "Brief")).status().message(),
            "stage id \"brief\" must be 1 to 50 upper-case letters, digits or underscores, "
            "starting with a letter");
  EXPECT_TRUE(AddStage(base, MakeStage("SITE_VISIT2", "Site visit")).ok());
  EXPECT_TRUE(AddStage(base, MakeStage(std::string(50, 'A'), "Long")).ok());

  // A stage from before the rule.
  Pipeline legacy = base;
  legacy.stages.insert(legacy.stages.begin() + 1, MakeStage("brief", "Brief"));
  ASSERT_NE(FindStage(legacy, "brief"), nullptr);
  auto renamed = UpdateStage(legacy, "brief", StageUpdate{.name = "Short brief"});
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  auto reordered = ReorderStages(*renamed, {"brief", "NEW", "PREPARATION", "PREPAYMENT_INVOICE",
                                            "EXECUTING", "FINAL_INVOICE"});
  ASSERT_TRUE(reordered.ok()) << reordered.status();
  EXPECT_EQ(FirstStage(*reordered).id, "brief");
  EXPECT_TRUE(AddStage(*reordered, MakeStage("SURVEY", "Survey")).ok());
  auto removed = RemoveStage(*reordered, "brief", 0);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(FindStage(*removed, "brief"), nullptr);
}

// Protects: a message names the pipeline the caller knows: by its id once it has one, by its
// name (quoted, escaped) while it is being created — never "pipeline 0"; a stage not found says
// which stage of which pipeline.
TEST(Validate, MessagesNameThePipeline) {
  Pipeline creating = DefaultPipeline(0, "Sales");
  creating.stages[4].semantics = Semantics::kSuccess;
  EXPECT_EQ(Validate(creating).message(),
            "pipeline \"Sales\": needs exactly one SUCCESS stage, has 2");
  creating.name = "Sa\"les\n";
  EXPECT_EQ(Validate(creating).message(),
            "pipeline \"Sa\\\"les\": needs exactly one SUCCESS stage, has 2");
  Pipeline stored = DefaultPipeline(7, "Sales");
  stored.stages.pop_back();
  EXPECT_EQ(Validate(stored).message(), "pipeline 7: needs at least one FAILURE stage");
  absl::Status missing = RemoveStage(DefaultPipeline(7, "Sales"), "SURVEY", 0).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(), "stage \"SURVEY\" not found in pipeline 7");
}

TEST(Validate, RefusesBrokenInvariants) {
  Pipeline base = DefaultPipeline();
  auto expect_invalid = [](const Pipeline& p, std::string_view needle) {
    absl::Status s = Validate(p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(std::string(s.message()).find(needle), std::string::npos) << s;
  };
  Pipeline two_success = base;
  two_success.stages[4].semantics = Semantics::kSuccess;
  expect_invalid(two_success, "exactly one SUCCESS");
  Pipeline no_failure = base;
  no_failure.stages.pop_back();
  expect_invalid(no_failure, "at least one FAILURE");
  Pipeline no_process = base;
  no_process.stages.erase(no_process.stages.begin(), no_process.stages.begin() + 5);
  expect_invalid(no_process, "at least one PROCESS");
  Pipeline final_first = base;
  std::swap(final_first.stages[0], final_first.stages[5]);
  expect_invalid(final_first, "the order is PROCESS");
  Pipeline duplicate_id = base;
  duplicate_id.stages[1].id = "NEW";
  expect_invalid(duplicate_id, "two stages with id \"NEW\"");
  Pipeline duplicate_name = base;
  duplicate_name.stages[1].name = " new ";
  expect_invalid(duplicate_name, "two stages named");
  Pipeline blank_name = base;
  blank_name.stages[2].name = "  ";
  expect_invalid(blank_name, "is blank");
  Pipeline bad_id = base;
  bad_id.stages[2].id = "with space";
  expect_invalid(bad_id, "stage id");
  Pipeline bad_idle = base;
  bad_idle.stages[2].idle_days = 0;
  expect_invalid(bad_idle, "idle_days 0");
  Pipeline unnamed = base;
  unnamed.name = "";
  expect_invalid(unnamed, "pipeline name is blank");
  Pipeline too_many = base;
  for (int i = 0; i < 50; ++i) {
    too_many.stages.insert(too_many.stages.begin(),
                           MakeStage("S" + std::to_string(i), "Step " + std::to_string(i)));
  }
  expect_invalid(too_many, "at most 50 stages");
}

TEST(AddStage, ProcessStagesGoBeforeTheFinalOnes) {
  absl::StatusOr<Pipeline> next = AddStage(DefaultPipeline(), MakeStage("SITE_VISIT", "Visit"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Ids(*next),
            (std::vector<std::string>{"NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING",
                                      "FINAL_INVOICE", "SITE_VISIT", "WON", "LOSE"}));
  EXPECT_EQ(next->stages[5].sort, 60);
  next = AddStage(*next, MakeStage("QUALIFY", "Qualification"), "PREPARATION");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->stages[1].id, "QUALIFY");
  next = AddStage(*next, MakeStage("NO_BUDGET", "No budget", Semantics::kFailure));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->stages.back().id, "NO_BUDGET");
  EXPECT_TRUE(Validate(*next).ok());
}

TEST(AddStage, Refusals) {
  Pipeline base = DefaultPipeline();
  EXPECT_EQ(AddStage(base, MakeStage("WON2", "Won again", Semantics::kSuccess)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AddStage(base, MakeStage("NEW", "Other")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(AddStage(base, MakeStage("OTHER", "won")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(AddStage(base, MakeStage("X", "X"), "NOPE").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(AddStage(base, MakeStage("X", "X"), "LOSE").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddStage(base, MakeStage("", "X")).status().code(), absl::StatusCode::kInvalidArgument);
  Pipeline full = base;
  while (full.stages.size() < kMaxStages) {
    absl::StatusOr<Pipeline> next =
        AddStage(full, MakeStage("S" + std::to_string(full.stages.size()),
                                 "Step " + std::to_string(full.stages.size())));
    ASSERT_TRUE(next.ok()) << next.status();
    full = *next;
  }
  absl::Status s = AddStage(full, MakeStage("ONE_MORE", "One more")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

// Protects: one rule says when two stage (or pipeline) names are the same, whatever the input
// throws at it: case (ASCII and not), accents composed or decomposed, compatibility forms,
// whitespace of any kind around and inside; different words stay different; a name of only
// whitespace (no-break spaces too) is blank.
TEST(NameKey, HostileInputs) {
  const std::string key = NameKey("Négociation en cours");
  for (const std::string same :
       {"NÉGOCIATION EN COURS", "negociation en cours", " \tNegociation\n en  cours ",
        "Ne\u0301gociation en cours",           // decomposed é
        "N\u00C9GOCIATION\u00A0en\u202Fcours",  // no-break spaces
        "\uFF2E\u00E9gociation en cours"}) {    // fullwidth N
    EXPECT_EQ(NameKey(same), key) << same;
  }
  EXPECT_NE(NameKey("Négociation"), key);
  EXPECT_NE(NameKey("Négociations en cours"), key);
  EXPECT_EQ(NameKey("STRASSE"), NameKey("Straße"));
  EXPECT_EQ(NameKey("Ёлка"), NameKey("ёлка"));
  EXPECT_NE(NameKey("Ёлка"), NameKey("Елка2"));
  EXPECT_TRUE(NameKey(" \u00A0\t").empty());

  Pipeline base = DefaultPipeline();
  EXPECT_EQ(AddStage(base, MakeStage("X", "\u00A0\u202F")).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::string twin : {"ＷＯＮ", " w\u00D3n ", "LOST", "Lo\u0301st"}) {
    EXPECT_EQ(AddStage(base, MakeStage("TWIN", twin)).status().code(),
              absl::StatusCode::kAlreadyExists)
        << twin;
  }
  Pipeline twins = base;
  twins.stages.push_back(MakeStage("NEW2", "\tnew"));
  EXPECT_EQ(Validate(twins).code(), absl::StatusCode::kInvalidArgument);
}

TEST(UpdateStage, RenameAndIdleDays) {
  absl::StatusOr<Pipeline> next =
      UpdateStage(DefaultPipeline(), "EXECUTING",
                  StageUpdate{.name = "  Works  ", .idle_days = std::optional<int>(7)});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(FindStage(*next, "EXECUTING")->name, "Works");
  EXPECT_EQ(FindStage(*next, "EXECUTING")->idle_days, 7);
  next = UpdateStage(*next, "EXECUTING",
                     StageUpdate{.name = std::nullopt, .idle_days = std::optional<int>()});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(FindStage(*next, "EXECUTING")->idle_days, std::nullopt);
  EXPECT_EQ(UpdateStage(*next, "EXECUTING", StageUpdate{.name = "Won"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(UpdateStage(*next, "NOPE", StageUpdate{.name = "x"}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(UpdateStage(*next, "NEW", StageUpdate{.name = ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      UpdateStage(*next, "NEW", StageUpdate{.idle_days = std::optional<int>(-1)}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// Protects: a rename to a name another stage has is refused by saying so (which stage holds
// it), not by describing the pipeline the refused rename would have made.
TEST(UpdateStage, ARenameToATakenNameNamesTheStageHoldingIt) {
  absl::Status taken =
      UpdateStage(DefaultPipeline(1, "Sales"), "EXECUTING", StageUpdate{.name = " won "}).status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.message(), "pipeline 1 has a stage named \"Won\" (WON) already");
  // Its own name, re-spelt, is no clash.
  EXPECT_TRUE(UpdateStage(DefaultPipeline(), "WON", StageUpdate{.name = "WON"}).ok());
}

// Protects: idle_days only on PROCESS stages: a deal in the SUCCESS or a FAILURE stage is closed
// and never idle, so a threshold there is refused, whether set at creation, when added or later.
TEST(Stages, IdleDaysOnlyOnProcessStages) {
  for (const char* closed : {"WON", "LOSE"}) {
    absl::Status refused =
        UpdateStage(DefaultPipeline(), closed, StageUpdate{.idle_days = std::optional<int>(3)})
            .status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << closed;
    EXPECT_NE(refused.message().find("idle_days is for PROCESS stages only"), std::string::npos)
        << refused.message();
    // Clearing it is no threshold.
    EXPECT_TRUE(
        UpdateStage(DefaultPipeline(), closed, StageUpdate{.idle_days = std::optional<int>()})
            .ok());
  }
  Pipeline created = DefaultPipeline();
  created.stages.back().idle_days = 5;
  EXPECT_EQ(Validate(created).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddStage(DefaultPipeline(),
                     Stage{.id = "LOST_PRICE",
                           .name = "Too dear",
                           .semantics = Semantics::kFailure,
                           .idle_days = 2},
                     "")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      UpdateStage(DefaultPipeline(), "NEW", StageUpdate{.idle_days = std::optional<int>(3)}).ok());
}

TEST(ReorderStages, APermutationOfTheProcessStages) {
  absl::StatusOr<Pipeline> next =
      ReorderStages(DefaultPipeline(),
                    {"PREPARATION", "NEW", "EXECUTING", "PREPAYMENT_INVOICE", "FINAL_INVOICE"});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Ids(*next),
            (std::vector<std::string>{"PREPARATION", "NEW", "EXECUTING", "PREPAYMENT_INVOICE",
                                      "FINAL_INVOICE", "WON", "LOSE"}));
  EXPECT_EQ(next->stages[0].sort, 10);
  EXPECT_TRUE(Validate(*next).ok());
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"NEW", "PREPARATION"},
           {"NEW", "NEW", "EXECUTING", "PREPAYMENT_INVOICE", "FINAL_INVOICE"},
           {"WON", "NEW", "PREPARATION", "EXECUTING", "PREPAYMENT_INVOICE", "FINAL_INVOICE"},
           {"NEW", "PREPARATION", "EXECUTING", "PREPAYMENT_INVOICE", "FINAL_INVOICE", "X"}}) {
    EXPECT_EQ(ReorderStages(DefaultPipeline(), bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(RemoveStage, RefusedWhileDealsSitInIt) {
  absl::Status s = RemoveStage(DefaultPipeline(), "EXECUTING", 3).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(s.message()).find("still holds 3 deals"), std::string::npos) << s;
  absl::StatusOr<Pipeline> next = RemoveStage(DefaultPipeline(), "EXECUTING", 0);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(FindStage(*next, "EXECUTING"), nullptr);
  EXPECT_EQ(next->stages.size(), 6u);
  EXPECT_EQ(next->stages.back().sort, 60);
}

TEST(RemoveStage, NeverBreaksTheInvariants) {
  EXPECT_EQ(RemoveStage(DefaultPipeline(), "WON", 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RemoveStage(DefaultPipeline(), "LOSE", 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Pipeline> p = DefaultPipeline();
  for (std::string id : {"NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING"}) {
    p = RemoveStage(*p, id, 0);
    ASSERT_TRUE(p.ok()) << p.status();
  }
  absl::Status s = RemoveStage(*p, "FINAL_INVOICE", 0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(s.message()).find("PROCESS"), std::string::npos) << s;
  EXPECT_EQ(RemoveStage(*p, "NOPE", 0).status().code(), absl::StatusCode::kNotFound);
}

TEST(RenamePipeline, BlankRefused) {
  EXPECT_EQ(RenamePipeline(DefaultPipeline(), " ").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RenamePipeline(DefaultPipeline(), " Interior works ")->name, "Interior works");
}

}  // namespace
}  // namespace leadflow::crm::domain
