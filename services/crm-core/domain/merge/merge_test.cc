// Protects: merging folds duplicates into the kept record without losing or duplicating anything
// (identities and links deduplicated by pair, activities moved, history on both sides), is
// idempotent when retried, and refuses malformed requests and records merged elsewhere with the
// documented code and a message naming the record.

#include "crm-core/domain/merge/merge.h"

#include <gtest/gtest.h>

namespace leadflow::crm::domain {
namespace {

MergeRecord Contact(int64_t id, std::vector<Identity> identities, std::vector<Link> links) {
  return MergeRecord{.kind = EntityKind::kContact,
                     .id = id,
                     .merged_into = std::nullopt,
                     .converted = false,
                     .identities = std::move(identities),
                     .links = std::move(links)};
}

const Identity kPhone{IdentityKind::kPhone, "+33612345678"};
const Identity kEmail{IdentityKind::kEmail, "marie@curie.fr"};
const Identity kOtherEmail{IdentityKind::kEmail, "m.curie@example.org"};

TEST(PlanMerge, MovesAndDeduplicates) {
  MergeRecord kept = Contact(1, {kPhone}, {{EntityKind::kCompany, 30, "CEO"}});
  std::vector<MergeRecord> folded = {
      Contact(2, {kPhone, kEmail},
              {{EntityKind::kCompany, 30, "Accountant"}, {EntityKind::kDeal, 100, ""}}),
      Contact(3, {kEmail, kOtherEmail},
              {{EntityKind::kDeal, 100, ""}, {EntityKind::kCompany, 31, "Buyer"}})};
  absl::StatusOr<MergePlan> plan = PlanMerge({EntityKind::kContact, 1, {2, 3}}, kept, folded);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->no_op);
  EXPECT_EQ(plan->fold_ids, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(plan->identities_to_add, (std::vector<Identity>{kEmail, kOtherEmail}));
  EXPECT_EQ(plan->links_to_add,
            (std::vector<Link>{{EntityKind::kDeal, 100, ""}, {EntityKind::kCompany, 31, "Buyer"}}));
  EXPECT_TRUE(plan->move_activities);
  ASSERT_EQ(plan->history.size(), 4u);
  EXPECT_EQ(plan->history[0].subject_id, 1);
  EXPECT_EQ(plan->history[0].related_id, 2);
  EXPECT_EQ(plan->history[1].subject_id, 2);
  EXPECT_EQ(plan->history[1].related_id, 1);
  EXPECT_EQ(plan->history[1].kind, "MERGED");
}

TEST(PlanMerge, RetryIsANoOp) {
  MergeRecord kept = Contact(1, {kPhone, kEmail}, {});
  MergeRecord two = Contact(2, {}, {});
  two.merged_into = 1;
  absl::StatusOr<MergePlan> plan = PlanMerge({EntityKind::kContact, 1, {2}}, kept, {two});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->no_op);
  EXPECT_FALSE(plan->move_activities);
  EXPECT_TRUE(plan->history.empty());
  // Partly done: only the rest is folded.
  plan = PlanMerge({EntityKind::kContact, 1, {2, 3}}, kept, {two, Contact(3, {kOtherEmail}, {})});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->fold_ids, (std::vector<int64_t>{3}));
}

TEST(PlanMerge, MergedElsewhereNamesIt) {
  MergeRecord two = Contact(2, {}, {});
  two.merged_into = 9;
  absl::Status s = PlanMerge({EntityKind::kContact, 1, {2}}, Contact(1, {}, {}), {two}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "contact 2 was already merged into contact 9");
  MergeRecord kept = Contact(1, {}, {});
  kept.merged_into = 7;
  s = PlanMerge({EntityKind::kContact, 1, {2}}, kept, {Contact(2, {}, {})}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(s.message()).find("merged into contact 7"), std::string::npos);
}

TEST(PlanMerge, RequestChecks) {
  auto code = [](MergeRequest request) { return ValidateMergeRequest(request).code(); };
  EXPECT_EQ(code({EntityKind::kContact, 1, {}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({EntityKind::kContact, 1, {1}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({EntityKind::kContact, 1, {2, 2}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({EntityKind::kContact, 0, {2}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({EntityKind::kContact, 1, {-2}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({EntityKind::kDeal, 1, {2}}), absl::StatusCode::kInvalidArgument);
  std::vector<int64_t> many;
  for (int64_t id = 2; id < 2 + static_cast<int64_t>(kMaxFolded); ++id) many.push_back(id);
  EXPECT_TRUE(ValidateMergeRequest({EntityKind::kCompany, 1, many}).ok());
  many.push_back(100);
  EXPECT_EQ(code({EntityKind::kCompany, 1, many}), absl::StatusCode::kInvalidArgument);
}

TEST(PlanMerge, MissingOrWrongKind) {
  EXPECT_EQ(PlanMerge({EntityKind::kContact, 1, {2, 3}}, Contact(1, {}, {}), {Contact(2, {}, {})})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  MergeRecord company = Contact(2, {}, {});
  company.kind = EntityKind::kCompany;
  EXPECT_EQ(
      PlanMerge({EntityKind::kContact, 1, {2}}, Contact(1, {}, {}), {company}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanMerge({EntityKind::kContact, 5, {2}}, Contact(1, {}, {}), {Contact(2, {}, {})})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(PlanMerge, LeadsConvertedOnesAreNotFolded) {
  MergeRecord kept{.kind = EntityKind::kLead, .id = 1};
  MergeRecord converted{.kind = EntityKind::kLead, .id = 2, .converted = true};
  absl::Status s = PlanMerge({EntityKind::kLead, 1, {2}}, kept, {converted}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  // A folded lead that pointed at the kept one (previous lead) does not become a self-link.
  MergeRecord returning{.kind = EntityKind::kLead, .id = 3, .links = {{EntityKind::kLead, 1, ""}}};
  absl::StatusOr<MergePlan> plan = PlanMerge({EntityKind::kLead, 1, {3}}, kept, {returning});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->links_to_add.empty());
}

// Protects: a converted lead is not kept either (what the folded leads bring would sit on a lead
// nobody works, and their person's traffic would reach the converted person's records):
// FAILED_PRECONDITION naming what it produced and ConvertLead with that contact as the way; the
// message no longer suggests keeping a converted lead.
TEST(PlanMerge, LeadsConvertedOnesAreNotKept) {
  MergeRecord kept{.kind = EntityKind::kLead,
                   .id = 13,
                   .converted = true,
                   .produced = {.contact_id = 8, .company_id = 8, .deal_id = 10}};
  MergeRecord open{.kind = EntityKind::kLead, .id = 14};
  absl::Status s = PlanMerge({EntityKind::kLead, 13, {14}}, kept, {open}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "lead 13 is converted into contact 8, company 8, deal 10 and takes no part in a "
            "merge; to give lead 14's phones, emails and activities to contact 8, convert lead 14 "
            "with contact_id 8 (ConvertLead)");
  // Folded the other way round: the same refusal, never "keep it".
  s = PlanMerge({EntityKind::kLead, 14, {13}}, open, {kept}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message().find("keep it"), std::string_view::npos) << s.message();
  EXPECT_NE(s.message().find("convert lead 14 with contact_id 8"), std::string_view::npos)
      << s.message();
}

// Protects: a merge never leaves the kept record over the identity cap: past it the merge is
// refused (FAILED_PRECONDITION naming the cap and how many to remove), never trimmed; at the cap
// it passes, and a kept record already over it (its identities set by hand) may still fold in
// records that add nothing new.
TEST(CheckMergedIdentities, RefusesPastTheCapNamingIt) {
  const MergeRequest request{.kind = EntityKind::kContact, .kept_id = 5, .folded_ids = {6}};
  EXPECT_TRUE(CheckMergedIdentities(request, 12, 20, 20).ok());
  const absl::Status refused = CheckMergedIdentities(request, 12, 23, 20);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("cap of 20"), std::string_view::npos) << refused.message();
  EXPECT_NE(refused.message().find("contact 5 with 23"), std::string_view::npos);
  EXPECT_NE(refused.message().find("remove 3"), std::string_view::npos);
  EXPECT_TRUE(CheckMergedIdentities(request, 25, 25, 20).ok());
  EXPECT_EQ(CheckMergedIdentities(request, 25, 26, 20).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace leadflow::crm::domain
