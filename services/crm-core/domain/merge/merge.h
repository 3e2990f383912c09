#pragma once

// The plan of MergeContacts, MergeCompanies and MergeLeads: keep one record, fold others into it.
// No I/O: the store locks and reads the records (kept and folded, with their identities and
// links), writes the plan in one transaction, and marks each folded record merged_into the kept
// one (merges table; Get on a folded id then answers NOT_FOUND naming the kept id).
//
// What moves to the kept record:
//  - identities, deduplicated (the kept record's own stay; a folded one it lacks is added);
//  - activities (owner_type/owner_id rewritten; no dedupe, they are distinct events);
//  - links, deduplicated by pair: a contact's companies (with role) and deals; a company's
//    contacts (with role) and deals (deals.company_id); a lead's produced records. When the kept
//    record already has a link to the same record, the kept one stays (with its role); when two
//    folded records link to the same record, the first in request order gives the role;
//  - history: MERGED on the kept record for each folded one, MERGED on each folded one naming
//    the kept one.
// Fields stay the kept record's: the manager chose which record to keep.
//
// Idempotency: a folded record already merged into this kept record — directly or along a chain
// of merges ending at it (5 into 6, then 6 into 7: 5 ends at 7) — is skipped, and a request whose
// folded records all are is a no-op (a retry after a lost reply). Merged into another record →
// FAILED_PRECONDITION naming where its chain ends; the kept record itself merged away →
// FAILED_PRECONDITION naming where it went.
//
// Converted leads take no part in a merge, neither kept nor folded. Folding one would lose its
// conversion; keeping one would give what the folded leads bring (another phone, an email) to a
// lead nobody works any more, while the person's traffic goes to the contact and deal it produced:
// the folded person's next message would then reach the converted lead's person's records. The
// way to give a lead's phones, emails and activities to the contact a converted lead produced is
// ConvertLead with that contact_id, which the refusal names.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crm-core/domain/common/types.h"
#include "crm-core/domain/conversion/conversion.h"

namespace leadflow::crm::domain {

inline constexpr size_t kMaxFolded = 20;

/// One link of a record to another record (contact_companies, deal_contacts, deals.company_id,
/// the lead's produced records). Identified by (kind, id); `role` only for contact ↔ company.
struct Link {
  EntityKind kind = EntityKind::kCompany;
  int64_t id = 0;
  std::string role;
  friend bool operator==(const Link&, const Link&) = default;
};

struct MergeRecord {
  EntityKind kind = EntityKind::kContact;
  int64_t id = 0;
  /// Where the record's chain of merges ends (the store follows it), when it was merged away.
  std::optional<int64_t> merged_into;
  /// Leads only: converted leads are neither kept nor folded; `produced` names what they became.
  bool converted = false;
  Produced produced;
  std::vector<Identity> identities;
  std::vector<Link> links;
};

struct MergeRequest {
  EntityKind kind = EntityKind::kContact;  // kContact, kCompany or kLead
  int64_t kept_id = 0;
  std::vector<int64_t> folded_ids;
};

struct MergeHistory {
  int64_t subject_id = 0;  // a record of the request's kind
  int64_t related_id = 0;  // same kind
  std::string kind = "MERGED";
};

struct MergePlan {
  bool no_op = false;
  /// The folded ids this merge actually folds (those not merged into the kept record already).
  std::vector<int64_t> fold_ids;
  /// To add to the kept record; every identity and link of `fold_ids` is removed from them.
  std::vector<Identity> identities_to_add;
  std::vector<Link> links_to_add;
  /// Activities owned by `fold_ids` move to the kept record.
  bool move_activities = true;
  std::vector<MergeHistory> history;
};

/// Validates the request (INVALID_ARGUMENT: unsupported kind, kept_id not positive, no folded ids,
/// more than kMaxFolded, duplicates, kept among them), then plans over `kept` and `folded` as the
/// store found them. A requested id missing from `folded` (or a kept record that differs from
/// kept_id) is NOT_FOUND; a record of another kind INVALID_ARGUMENT.
absl::StatusOr<MergePlan> PlanMerge(const MergeRequest& request, const MergeRecord& kept,
                                    const std::vector<MergeRecord>& folded);

/// The identity cap (RuleSettings::max_inbound_identities): a merge that would leave the kept
/// record holding more than `cap` distinct identities, and more than it holds already
/// (`kept_identities`), is FAILED_PRECONDITION naming the cap and the count — refused rather than
/// trimmed, since dropping a phone or an email would lose how to reach the person and silently
/// stop matching their traffic. `merged_identities`: distinct identities of the kept and folded
/// records together.
absl::Status CheckMergedIdentities(const MergeRequest& request, size_t kept_identities,
                                   size_t merged_identities, size_t cap);

/// The request checks alone, for the API to answer before touching the database.
absl::Status ValidateMergeRequest(const MergeRequest& request);

}  // namespace leadflow::crm::domain
