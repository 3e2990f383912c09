#include "webform-ingest/body.h"

#include <nlohmann/json.hpp>
#include <restinio/helpers/http_field_parsers/content-disposition.hpp>
#include <restinio/helpers/http_field_parsers/content-type.hpp>
#include <restinio/helpers/multipart_body.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "identity/identity.h"

namespace leadflow::webform {
namespace {

using Outcome = BodyResult::Outcome;

BodyResult Failure(Outcome outcome, std::string code, std::string reason, std::string field = "") {
  BodyResult result;
  result.outcome = outcome;
  result.code = std::move(code);
  result.reason = std::move(reason);
  result.field = std::move(field);
  return result;
}

std::string Lower(std::string_view text) {
  return absl::AsciiStrToLower(absl::string_view(text.data(), text.size()));
}

// Adds one field, enforcing the limits; returns a failure result or nothing.
std::optional<BodyResult> AddField(std::string name, std::string value, const BodyLimits& limits,
                                   Fields* fields) {
  if (name.empty()) {
    return Failure(Outcome::kMalformed, "empty_field_name", "a field has no name");
  }
  if (name.size() > limits.max_name_bytes) {
    return Failure(Outcome::kMalformed, "field_name_too_long",
                   absl::StrCat("field names are limited to ", limits.max_name_bytes, " bytes"));
  }
  if (value.size() > limits.max_value_bytes) {
    return Failure(Outcome::kMalformed, "field_too_long",
                   absl::StrCat("field values are limited to ", limits.max_value_bytes, " bytes"),
                   name);
  }
  for (const std::string* text : {&name, &value}) {
    if (!identity::IsValidUtf8(*text) || text->find('\0') != std::string::npos) {
      return Failure(Outcome::kMalformed, "invalid_text",
                     "names and values must be UTF-8 text without NUL bytes");
    }
  }
  if (fields->size() >= limits.max_fields && fields->count(name) == 0) {
    return Failure(Outcome::kMalformed, "too_many_fields",
                   absl::StrCat("at most ", limits.max_fields, " fields"));
  }
  fields->emplace(std::move(name), std::move(value));
  return std::nullopt;
}

// Deepest nesting of objects/arrays, ignoring brackets inside strings; stops counting early.
int JsonDepth(std::string_view body, int stop_at) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > stop_at) {
        return deepest;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

BodyResult ParseJson(std::string_view body, const BodyLimits& limits) {
  if (JsonDepth(body, limits.max_json_depth) > limits.max_json_depth) {
    return Failure(Outcome::kMalformed, "malformed_json", "nested too deeply");
  }
  nlohmann::json document = nlohmann::json::parse(body.begin(), body.end(), nullptr,
                                                  /*allow_exceptions=*/false);
  if (document.is_discarded()) {
    return Failure(Outcome::kMalformed, "malformed_json", "the body is not valid JSON");
  }
  if (!document.is_object()) {
    return Failure(Outcome::kMalformed, "malformed_json", "the body must be a JSON object");
  }
  BodyResult result;
  for (const auto& [name, value] : document.items()) {
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number_integer() || value.is_number_unsigned()) {
      text = value.dump();
    } else if (value.is_number_float()) {
      text = value.dump();
    } else if (value.is_boolean()) {
      text = value.get<bool>() ? "true" : "false";
    } else if (value.is_null()) {
      continue;
    } else {
      return Failure(Outcome::kWrongType, "wrong_type", "must be a string or a number", name);
    }
    if (auto failure = AddField(name, std::move(text), limits, &result.fields)) {
      return *failure;
    }
  }
  return result;
}

BodyResult ParseUrlEncoded(std::string_view body, const BodyLimits& limits) {
  BodyResult result;
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('&', start);
    if (end == std::string_view::npos) {
      end = body.size();
    }
    std::string_view pair = body.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) {
      continue;
    }
    size_t equals = pair.find('=');
    std::string name;
    std::string value;
    if (!UrlDecode(pair.substr(0, equals), &name) ||
        (equals != std::string_view::npos && !UrlDecode(pair.substr(equals + 1), &value))) {
      return Failure(Outcome::kMalformed, "malformed_form", "bad %-escape");
    }
    if (auto failure = AddField(std::move(name), std::move(value), limits, &result.fields)) {
      return *failure;
    }
  }
  return result;
}

BodyResult ParseMultipart(std::string_view body, const std::string& boundary,
                          const BodyLimits& limits) {
  namespace mp = restinio::multipart_body;
  namespace hfp = restinio::http_field_parsers;
  if (boundary.empty() || boundary.size() > 70) {
    return Failure(Outcome::kMalformed, "malformed_multipart", "missing or invalid boundary");
  }
  std::string delimiter = "--" + boundary;
  // RESTinio wants CRLF after the closing delimiter; some clients end the body without it.
  std::string owned;
  if (body.size() >= 2 && body.substr(body.size() - 2) == "--") {
    owned = absl::StrCat(absl::string_view(body.data(), body.size()), "\r\n");
    body = owned;
  }
  auto parts = mp::split_multipart_body(restinio::string_view_t(body.data(), body.size()),
                                        restinio::string_view_t(delimiter));
  if (parts.empty()) {
    return Failure(Outcome::kMalformed, "malformed_multipart", "no parts or no final boundary");
  }
  if (parts.size() > limits.max_fields) {
    return Failure(Outcome::kMalformed, "too_many_fields",
                   absl::StrCat("at most ", limits.max_fields, " fields"));
  }
  BodyResult result;
  for (const auto& raw_part : parts) {
    auto part = mp::try_parse_part(raw_part);
    if (!part) {
      return Failure(Outcome::kMalformed, "malformed_multipart", "a part cannot be parsed");
    }
    auto disposition_header = part->fields.opt_value_of("Content-Disposition");
    if (!disposition_header) {
      return Failure(Outcome::kMalformed, "malformed_multipart",
                     "a part has no Content-Disposition");
    }
    auto disposition = hfp::content_disposition_value_t::try_parse(*disposition_header);
    if (!disposition || Lower(disposition->value) != "form-data") {
      return Failure(Outcome::kMalformed, "malformed_multipart",
                     "a part's Content-Disposition is not form-data");
    }
    std::optional<std::string> name;
    bool is_file = false;
    for (const auto& [key, value] : disposition->parameters) {
      std::string lower_key = Lower(key);
      if (lower_key == "name") {
        name = value;
      } else if (lower_key == "filename" || lower_key == "filename*") {
        is_file = true;
      }
    }
    if (!name) {
      return Failure(Outcome::kMalformed, "malformed_multipart", "a part has no name");
    }
    if (is_file) {
      continue;  // uploads are not part of a lead; ignored, documented
    }
    if (auto failure = AddField(*name, std::string(part->body.data(), part->body.size()), limits,
                                &result.fields)) {
      return *failure;
    }
  }
  return result;
}

}  // namespace

bool UrlDecode(std::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out->push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size() || !absl::ascii_isxdigit(text[i + 1]) ||
          !absl::ascii_isxdigit(text[i + 2])) {
        return false;
      }
      auto hex = [](char digit) {
        return absl::ascii_isdigit(digit) ? digit - '0' : absl::ascii_tolower(digit) - 'a' + 10;
      };
      out->push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out->push_back(c);
    }
  }
  return true;
}

BodyResult ParseBody(std::string_view content_type, std::string_view body,
                     const BodyLimits& limits) {
  namespace hfp = restinio::http_field_parsers;
  auto parsed = hfp::content_type_value_t::try_parse(
      restinio::string_view_t(content_type.data(), content_type.size()));
  if (!parsed) {
    return Failure(Outcome::kUnsupportedMediaType, "unsupported_media_type",
                   "missing or unreadable Content-Type");
  }
  std::string media = Lower(parsed->media_type.type + "/" + parsed->media_type.subtype);
  if (media == "application/json") {
    return ParseJson(body, limits);
  }
  if (media == "application/x-www-form-urlencoded") {
    return ParseUrlEncoded(body, limits);
  }
  if (media == "multipart/form-data") {
    std::string boundary;
    for (const auto& [key, value] : parsed->media_type.parameters) {
      if (Lower(key) == "boundary") {
        boundary = value;
      }
    }
    return ParseMultipart(body, boundary, limits);
  }
  return Failure(Outcome::kUnsupportedMediaType, "unsupported_media_type",
                 "use application/json, application/x-www-form-urlencoded or multipart/form-data");
}

}  // namespace leadflow::webform
