#include "crm-core/api/common/fields.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace leadflow::crm {

constexpr size_t kMaxTextField = 10000;

absl::StatusOr<std::set<std::string>> UpdatePaths(const google::protobuf::FieldMask& mask,
                                                  const std::set<std::string>& updatable) {
  std::set<std::string> paths;
  for (const std::string& path : mask.paths()) {
    if (updatable.count(path) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("field '", path, "' cannot be updated"));
    }
    paths.insert(path);
  }
  if (paths.empty()) {
    return absl::InvalidArgumentError("update_mask names no field");
  }
  return paths;
}

absl::StatusOr<int64_t> ParseEtag(const std::string& etag) {
  int64_t version = 0;
  if (!etag.empty() && (!absl::SimpleAtoi(etag, &version) || version <= 0)) {
    return absl::InvalidArgumentError("etag is not one this server issued");
  }
  return version;
}

std::string Etag(int64_t version) { return std::to_string(version); }

absl::Status CheckText(const std::string& field, const std::string& value) {
  if (value.size() > kMaxTextField) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is longer than ", kMaxTextField));
  }
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

google::protobuf::Timestamp FromMicros(int64_t micros) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
}

int64_t ToMicros(const google::protobuf::Timestamp& timestamp) {
  return google::protobuf::util::TimeUtil::TimestampToMicroseconds(timestamp);
}

std::string WithoutPrefix(const std::string& name, const std::string& prefix) {
  absl::string_view rest = name;
  if (!absl::ConsumePrefix(&rest, prefix) || rest == "UNSPECIFIED") {
    return "";
  }
  return std::string(rest);
}

}  // namespace leadflow::crm
