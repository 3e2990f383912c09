#include "crm-core/domain/merge/merge.h"

#include "crm-core/domain/common/errors.h"

#include <algorithm>
#include <set>
#include <utility>

#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {

namespace {

// A converted lead in a merge (merge.h): refused, naming what it produced and the way to give
// the other lead's phones, emails and activities to that contact.
absl::Status ConvertedLeadRefused(const MergeRecord& converted, int64_t other_lead_id) {
  std::string way =
      converted.produced.contact_id
          ? Cat("; to give lead ", other_lead_id, "'s phones, emails and activities to contact ",
                *converted.produced.contact_id, ", convert lead ", other_lead_id,
                " with contact_id ", *converted.produced.contact_id, " (ConvertLead)")
          : Cat("; convert lead ", other_lead_id,
                " with the contact_id or company_id it belongs to (ConvertLead)");
  std::string into =
      converted.produced.empty() ? std::string() : Cat(" into ", Describe(converted.produced));
  return absl::FailedPreconditionError(
      Cat("lead ", converted.id, " is converted", into, " and takes no part in a merge", way));
}

}  // namespace

absl::Status ValidateMergeRequest(const MergeRequest& request) {
  if (request.kind == EntityKind::kDeal) {
    return absl::InvalidArgumentError("deals are not merged; only contacts, companies and leads");
  }
  std::string_view noun = Noun(request.kind);
  if (request.kept_id <= 0) {
    return absl::InvalidArgumentError(
        Cat("the kept ", noun, " id ", request.kept_id, " is not an id"));
  }
  if (request.folded_ids.empty()) {
    return absl::InvalidArgumentError(
        Cat("name at least one ", noun, " to fold into ", request.kept_id));
  }
  if (request.folded_ids.size() > kMaxFolded) {
    return absl::InvalidArgumentError(Cat("at most ", kMaxFolded, " ", noun,
                                          "s are folded at once; got ", request.folded_ids.size()));
  }
  std::set<int64_t> seen;
  for (int64_t id : request.folded_ids) {
    if (id <= 0) return absl::InvalidArgumentError(Cat("folded id ", id, " is not an id"));
    if (id == request.kept_id) {
      return absl::InvalidArgumentError(Cat(noun, " ", id, " is both kept and folded"));
    }
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(Cat(noun, " ", id, " is named twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckMergedIdentities(const MergeRequest& request, size_t kept_identities,
                                   size_t merged_identities, size_t cap) {
  if (merged_identities <= cap || merged_identities <= kept_identities) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(Cat(
      "merging would leave ", Noun(request.kind), " ", request.kept_id, " with ", merged_identities,
      " identities, over the cap of ", cap, " (CRM_LEAD_MAX_INBOUND_IDENTITIES); remove ",
      merged_identities - cap, " phone(s), email(s) or messenger id(s) from the records first"));
}

absl::StatusOr<MergePlan> PlanMerge(const MergeRequest& request, const MergeRecord& kept,
                                    const std::vector<MergeRecord>& folded) {
  if (absl::Status s = ValidateMergeRequest(request); !s.ok()) return s;
  std::string_view noun = Noun(request.kind);
  if (kept.id != request.kept_id) {
    return NotFound(request.kind, request.kept_id);
  }
  if (kept.kind != request.kind) {
    return absl::InvalidArgumentError(Cat(kept.id, " is a ", Noun(kept.kind), ", not a ", noun));
  }
  if (kept.merged_into) {
    return absl::FailedPreconditionError(Cat(noun, " ", kept.id, " was merged into ", noun, " ",
                                             *kept.merged_into, "; merge into that one"));
  }
  if (kept.converted) {
    return ConvertedLeadRefused(kept, request.folded_ids.front());
  }

  MergePlan plan;
  std::set<Identity> identities(kept.identities.begin(), kept.identities.end());
  std::set<std::pair<EntityKind, int64_t>> linked;
  for (const Link& link : kept.links) linked.insert({link.kind, link.id});

  for (int64_t id : request.folded_ids) {
    auto record = std::find_if(folded.begin(), folded.end(),
                               [&](const MergeRecord& r) { return r.id == id; });
    if (record == folded.end()) return NotFound(request.kind, id);
    if (record->kind != request.kind) {
      return absl::InvalidArgumentError(Cat(id, " is a ", Noun(record->kind), ", not a ", noun));
    }
    if (record->merged_into) {
      if (*record->merged_into == kept.id) continue;  // done by an earlier try of this merge
      return absl::FailedPreconditionError(
          Cat(noun, " ", id, " was already merged into ", noun, " ", *record->merged_into));
    }
    if (record->converted) {
      return ConvertedLeadRefused(*record, kept.id);
    }
    plan.fold_ids.push_back(id);
    for (const Identity& identity : record->identities) {
      if (identities.insert(identity).second) plan.identities_to_add.push_back(identity);
    }
    for (const Link& link : record->links) {
      // A folded lead linked to the kept one (previous_lead_id) would become a self-link.
      if (link.kind == request.kind && link.id == kept.id) continue;
      if (linked.insert({link.kind, link.id}).second) plan.links_to_add.push_back(link);
    }
    plan.history.push_back({kept.id, id, "MERGED"});
    plan.history.push_back({id, kept.id, "MERGED"});
  }
  plan.no_op = plan.fold_ids.empty();
  plan.move_activities = !plan.no_op;
  return plan;
}

}  // namespace leadflow::crm::domain
