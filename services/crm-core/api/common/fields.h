#pragma once

#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace leadflow::crm {

/// The paths of an Update call's mask: INVALID_ARGUMENT for a path not in `updatable` or an
/// empty mask.
absl::StatusOr<std::set<std::string>> UpdatePaths(const google::protobuf::FieldMask& mask,
                                                  const std::set<std::string>& updatable);

/// Etags are the record's version: "" (no check) → 0; anything this server did not issue is
/// refused.
absl::StatusOr<int64_t> ParseEtag(const std::string& etag);
std::string Etag(int64_t version);

/// Free text a caller may set: at most 10,000 bytes, no NUL byte.
absl::Status CheckText(const std::string& field, const std::string& value);

google::protobuf::Timestamp FromMicros(int64_t micros);
int64_t ToMicros(const google::protobuf::Timestamp& timestamp);

/// The database's spelling of a proto enum value: "TASK" for ACTIVITY_TYPE_TASK with prefix
/// "ACTIVITY_TYPE_"; empty for UNSPECIFIED and for names without the prefix.
std::string WithoutPrefix(const std::string& name, const std::string& prefix);

}  // namespace leadflow::crm
