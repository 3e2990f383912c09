#include "crm-core/api/common/filters.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/store/deal_repository.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {

namespace {

absl::Status CheckPositive(const std::string& field, int64_t id) {
  if (id < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be positive"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckFilterRecord(pqxx::transaction_base& work, const std::string& field,
                               domain::EntityKind kind, int64_t id) {
  if (absl::Status positive = CheckPositive(field, id); !positive.ok() || id == 0) {
    return positive;
  }
  std::optional<MergeRepository::Owner> owner =
      MergeRepository(work).Find(std::string(domain::ToString(kind)), id);
  if (owner && owner->merged_into == 0) {
    return absl::OkStatus();
  }
  return NotLive(work, kind, id);
}

absl::Status CheckFilterUser(pqxx::transaction_base& work, const std::string& field, int64_t id) {
  if (absl::Status positive = CheckPositive(field, id); !positive.ok() || id == 0) {
    return positive;
  }
  if (!UserRepository(work).Get(id)) {
    return domain::NotFound("user", id);
  }
  return absl::OkStatus();
}

absl::Status CheckFilterPipeline(pqxx::transaction_base& work, int64_t id) {
  if (absl::Status positive = CheckPositive("pipeline_id", id); !positive.ok() || id == 0) {
    return positive;
  }
  if (!PipelineRepository(work).Get(id)) {
    return domain::NotFound("pipeline", id);
  }
  return absl::OkStatus();
}

absl::Status CheckCreatedRange(const google::protobuf::Timestamp* after,
                               const google::protobuf::Timestamp* before) {
  for (auto [field, time] : {std::pair{"created_after", after}, {"created_before", before}}) {
    if (time != nullptr &&
        (time->seconds() < google::protobuf::util::TimeUtil::kTimestampMinSeconds ||
         time->seconds() > google::protobuf::util::TimeUtil::kTimestampMaxSeconds ||
         time->nanos() < 0 || time->nanos() > 999999999)) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is not a valid time"));
    }
  }
  if (after != nullptr && before != nullptr && ToMicros(*after) >= ToMicros(*before)) {
    return absl::InvalidArgumentError(
        absl::StrCat("created_after (", google::protobuf::util::TimeUtil::ToString(*after),
                     ") must be earlier than created_before (",
                     google::protobuf::util::TimeUtil::ToString(*before),
                     "): the range [created_after, created_before) holds no time"));
  }
  return absl::OkStatus();
}

}  // namespace leadflow::crm
