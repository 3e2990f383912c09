#include "crm-core/api/common/fields.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "identity/person_name.h"

namespace leadflow::crm {

absl::StatusOr<std::set<std::string>> UpdatePaths(const google::protobuf::FieldMask& mask,
                                                  const std::set<std::string>& updatable,
                                                  const google::protobuf::Descriptor* resource) {
  std::set<std::string> paths;
  for (const std::string& path : mask.paths()) {
    if (updatable.count(path) != 0) {
      paths.insert(path);
      continue;
    }
    if (path == "*") {
      return absl::InvalidArgumentError(
          "update_mask '*' (every field) is not supported: name the fields to change");
    }
    if (resource != nullptr && resource->FindFieldByName(path) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown field ", domain::Quoted(path),
                                                     " in update_mask: ", resource->name(),
                                                     " has no such field"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("field ", domain::Quoted(path), " cannot be updated"));
  }
  if (paths.empty()) {
    return absl::InvalidArgumentError("update_mask names no field");
  }
  return paths;
}

absl::StatusOr<int64_t> ParseEtag(const std::string& etag) {
  int64_t version = 0;
  // Only the exact text Etag issues: SimpleAtoi alone takes " 2", "2 ", "+2" and "02" as 2.
  if (!etag.empty() &&
      (!absl::SimpleAtoi(etag, &version) || version <= 0 || Etag(version) != etag)) {
    return absl::InvalidArgumentError("etag is not one this server issued");
  }
  return version;
}

std::string Etag(int64_t version) { return std::to_string(version); }

absl::Status CheckText(const std::string& field, const std::string& value) {
  if (value.size() > domain::kMaxTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is longer than ", domain::kMaxTextBytes, " bytes"));
  }
  if (value.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, " contains a NUL byte"));
  }
  const bool multi_line = absl::EndsWith(field, "comments") || absl::EndsWith(field, "description");
  for (size_t at = 0; at < value.size();) {
    const unsigned char lead = static_cast<unsigned char>(value[at]);
    const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (lead >= 0x80 && (lead < 0xC2 || lead > 0xF4 || at + length > value.size())) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is not UTF-8"));
    }
    char32_t point = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t i = 1; i < length; ++i) {
      const unsigned char next = static_cast<unsigned char>(value[at + i]);
      if ((next & 0xC0) != 0x80) {
        return absl::InvalidArgumentError(absl::StrCat(field, " is not UTF-8"));
      }
      point = (point << 6) | (next & 0x3F);
    }
    at += length;
    const bool line_break = point == '\n' || point == '\r' || point == '\t';
    if ((point < 0x20 && !(multi_line && line_break)) || (point >= 0x7F && point <= 0x9F)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s contains a control character (U+%04X)%s", field,
                          static_cast<uint32_t>(point), line_break ? ": it is one line" : ""));
    }
    // Embeddings, overrides and isolates reorder what is displayed after them (a name shown
    // reversed, a file name's extension hidden).
    if ((point >= 0x202A && point <= 0x202E) || (point >= 0x2066 && point <= 0x2069)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s contains a bidirectional formatting character (U+%04X)", field,
                          static_cast<uint32_t>(point)));
    }
  }
  // Only spaces and characters nobody sees (combining marks alone, format characters, fillers,
  // the braille blank; identity::HasVisibleCharacter, by ICU's properties): blank to a reader,
  // not to a check that trims ASCII spaces. ASCII white space alone is left to the caller (an
  // empty value).
  if (value.find_first_not_of(" \t\r\n") != std::string::npos &&
      !identity::HasVisibleCharacter(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is blank: it holds only invisible characters"));
  }
  return absl::OkStatus();
}

absl::Status CheckShortText(const std::string& field, const std::string& value, size_t max_bytes) {
  if (absl::Status text = CheckText(field, value); !text.ok()) {
    return text;
  }
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is longer than ", max_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckTime(const std::string& field, const google::protobuf::Timestamp& time) {
  // Seconds of 1900-01-01T00:00:00Z and of 2201-01-01T00:00:00Z.
  constexpr int64_t kFirst = -2208988800;
  constexpr int64_t kAfterLast = 7289654400;
  if (time.nanos() < 0 || time.nanos() > 999999999 || time.seconds() < kFirst ||
      time.seconds() >= kAfterLast) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a time in the years ", kMinYear, " to ", kMaxYear));
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
