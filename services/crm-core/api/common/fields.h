#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace leadflow::crm {

/// The paths of an Update call's mask: INVALID_ARGUMENT for a path not in `updatable` or an
/// empty mask. With `resource` (the updated message's type) the message says which: a field the
/// resource does not have ("unknown field 'nmae'…", "*"), or one it has that cannot be updated.
absl::StatusOr<std::set<std::string>> UpdatePaths(
    const google::protobuf::FieldMask& mask, const std::set<std::string>& updatable,
    const google::protobuf::Descriptor* resource = nullptr);

/// Etags are the record's version: "" (no check) → 0; anything this server did not issue is
/// refused.
absl::StatusOr<int64_t> ParseEtag(const std::string& etag);
std::string Etag(int64_t version);

/// Free text a caller may set: at most domain::kMaxTextBytes (10,000) bytes of UTF-8, no control
/// character (C0, DEL, C1; tab and line breaks only in multi-line fields, those whose name ends in
/// "comments" or "description"), no bidirectional embedding, override or isolate, and not only
/// invisible characters (identity::HasVisibleCharacter: a zero-width space, a combining accent
/// alone or a Hangul filler is blank).
absl::Status CheckText(const std::string& field, const std::string& value);

/// CheckText, and at most `max_bytes` (a field's kind's limit, domain/common/limits.h: a name
/// kMaxNameBytes, a configured label kMaxLabelBytes): INVALID_ARGUMENT "<field> is longer than
/// <max_bytes> bytes" past it.
absl::Status CheckShortText(const std::string& field, const std::string& value, size_t max_bytes);

/// The years a date or time a caller sets may fall in (deadlines, expected close dates): a year
/// outside is a typing slip (0001, 9999), refused rather than stored.
inline constexpr int kMinYear = 1900;
inline constexpr int kMaxYear = 2200;

/// A time a caller sets: a valid Timestamp from 1900-01-01T00:00:00Z up to the end of 2200;
/// INVALID_ARGUMENT naming `field` otherwise.
absl::Status CheckTime(const std::string& field, const google::protobuf::Timestamp& time);

google::protobuf::Timestamp FromMicros(int64_t micros);
int64_t ToMicros(const google::protobuf::Timestamp& timestamp);

/// The database's spelling of a proto enum value: "TASK" for ACTIVITY_TYPE_TASK with prefix
/// "ACTIVITY_TYPE_"; empty for UNSPECIFIED and for names without the prefix.
std::string WithoutPrefix(const std::string& name, const std::string& prefix);

}  // namespace leadflow::crm
