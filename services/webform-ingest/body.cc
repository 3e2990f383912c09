#include "webform-ingest/body.h"

#include <nlohmann/json.hpp>
#include <restinio/helpers/http_field_parsers/content-disposition.hpp>
#include <restinio/helpers/http_field_parsers/content-type.hpp>
#include <restinio/helpers/multipart_body.hpp>

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "identity/identity.h"

namespace leadflow::webform {
namespace {

using Outcome = BodyResult::Outcome;

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

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

// The top-level members of a JSON object, read as the parser meets them, without building a
// document (the document cost more than the rest of the body's handling; callgrind,
// docs/performance.md). A repeated key keeps its first value (as for the other media types):
// later ones are skipped. Nested arrays and objects are only noted, as wrong types.
class TopLevelMembers : public nlohmann::json_sax<nlohmann::json> {
 public:
  struct Member {
    std::string text;
    bool null = false;
    bool nested = false;  // an array or an object
  };
  // By name, as a document's object would list them: the first error found is the same.
  std::map<std::string, Member> members;
  bool object = false;  // the body is one object

  bool null() override { return Value({"", true, false}); }
  bool boolean(bool value) override { return Value({value ? "true" : "false"}); }
  bool number_integer(number_integer_t value) override { return Value({std::to_string(value)}); }
  bool number_unsigned(number_unsigned_t value) override { return Value({std::to_string(value)}); }
  bool number_float(number_float_t value, const string_t&) override {
    return Value({nlohmann::json(value).dump()});  // as the document would print it
  }
  bool string(string_t& value) override { return Value({std::move(value)}); }
  bool binary(binary_t&) override { return Value({"", false, true}); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) {
      object = true;
    }
    return Open();
  }
  bool key(string_t& name) override {
    if (depth_ == 1) {
      key_ = std::move(name);
    }
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool Value(Member member) {
    if (depth_ == 1) {
      members.emplace(std::move(key_), std::move(member));  // the first one stays
    }
    return true;
  }
  bool Open() {
    if (depth_ == 1) {
      Value({"", false, true});
    }
    ++depth_;
    return true;
  }

  int depth_ = 0;
  std::string key_;
};

BodyResult ParseJson(std::string_view body, const BodyLimits& limits) {
  if (JsonDepth(body, limits.max_json_depth) > limits.max_json_depth) {
    return Failure(Outcome::kMalformed, "malformed_json", "nested too deeply");
  }
  TopLevelMembers reader;
  if (!nlohmann::json::sax_parse(body.begin(), body.end(), &reader)) {
    return Failure(Outcome::kMalformed, "malformed_json", "the body is not valid JSON");
  }
  if (!reader.object) {
    return Failure(Outcome::kMalformed, "malformed_json", "the body must be a JSON object");
  }
  BodyResult result;
  for (auto& [name, member] : reader.members) {
    if (member.null) {
      continue;
    }
    if (member.nested) {
      return Failure(Outcome::kWrongType, "wrong_type", "must be a string or a number", name);
    }
    if (auto failure = AddField(name, std::move(member.text), limits, &result.fields)) {
      return *failure;
    }
  }
  return result;
}

using RawFields = std::vector<std::pair<std::string, std::string>>;

// Transcodes every name and value from the declared charset (the Content-Type's, else the
// `_charset_` field browsers fill in) to UTF-8, then adds them with the usual checks.
BodyResult AddAll(RawFields raw, std::string charset, const BodyLimits& limits) {
  if (charset.empty()) {
    for (const auto& [name, value] : raw) {
      if (name == "_charset_") {
        charset = value;
        break;
      }
    }
  }
  std::optional<Charset> declared = charset.empty() ? Charset::kUtf8 : CharsetByLabel(charset);
  if (!declared) {
    return Failure(Outcome::kUnsupportedMediaType, "unsupported_charset",
                   "use UTF-8, ISO-8859-1, ISO-8859-15 or windows-1252");
  }
  BodyResult result;
  for (auto& [name, value] : raw) {
    if (name == "_charset_") {
      continue;
    }
    if (*declared != Charset::kUtf8) {
      name = ToUtf8(*declared, name);
      value = ToUtf8(*declared, value);
    }
    if (auto failure = AddField(std::move(name), std::move(value), limits, &result.fields)) {
      return *failure;
    }
  }
  return result;
}

BodyResult ParseUrlEncoded(std::string_view body, const std::string& charset,
                           const BodyLimits& limits) {
  RawFields raw;
  std::set<std::string> seen;
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
    if (!seen.insert(name).second) {
      continue;  // a repeated name keeps its first value
    }
    if (seen.size() > limits.max_fields) {
      return Failure(Outcome::kMalformed, "too_many_fields",
                     absl::StrCat("at most ", limits.max_fields, " fields"));
    }
    raw.emplace_back(std::move(name), std::move(value));
  }
  return AddAll(std::move(raw), charset, limits);
}

BodyResult ParseMultipart(std::string_view body, const std::string& boundary,
                          const std::string& charset, const BodyLimits& limits) {
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
  RawFields raw;
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
    raw.emplace_back(*name, std::string(part->body.data(), part->body.size()));
  }
  return AddAll(std::move(raw), charset, limits);
}

}  // namespace

std::optional<Charset> CharsetByLabel(std::string_view label) {
  std::string lower = Lower(label);
  lower = std::string(absl::StripAsciiWhitespace(lower));
  if (lower == "utf-8" || lower == "utf8") {
    return Charset::kUtf8;
  }
  // As browsers do (WHATWG Encoding), the ISO-8859-1 and ASCII labels mean windows-1252, its
  // superset: that is what a page declaring them actually sends.
  if (lower == "windows-1252" || lower == "cp1252" || lower == "iso-8859-1" ||
      lower == "iso8859-1" || lower == "latin1" || lower == "l1" || lower == "us-ascii" ||
      lower == "ascii" || lower == "x-cp1252" || lower == "iso_8859-1") {
    return Charset::kWindows1252;
  }
  if (lower == "iso-8859-15" || lower == "iso8859-15" || lower == "latin-9" || lower == "latin9" ||
      lower == "iso_8859-15" || lower == "l9") {
    return Charset::kIso8859_15;
  }
  return std::nullopt;
}

std::string ToUtf8(Charset charset, std::string_view text) {
  // windows-1252's 0x80–0x9F (the five unassigned bytes map to the C1 controls, as WHATWG).
  static constexpr uint16_t kWindows1252High[32] = {
      0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  if (charset == Charset::kUtf8) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    uint32_t code_point = byte;
    switch (charset) {
      case Charset::kUtf8:
        break;
      case Charset::kWindows1252:
        if (byte >= 0x80 && byte < 0xA0) {
          code_point = kWindows1252High[byte - 0x80];
        }
        break;
      case Charset::kIso8859_15:
        switch (byte) {
          case 0xA4:
            code_point = 0x20AC;
            break;
          case 0xA6:
            code_point = 0x0160;
            break;
          case 0xA8:
            code_point = 0x0161;
            break;
          case 0xB4:
            code_point = 0x017D;
            break;
          case 0xB8:
            code_point = 0x017E;
            break;
          case 0xBC:
            code_point = 0x0152;
            break;
          case 0xBD:
            code_point = 0x0153;
            break;
          case 0xBE:
            code_point = 0x0178;
            break;
          default:
            break;
        }
        break;
    }
    AppendUtf8(code_point, &out);
  }
  return out;
}

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
  std::string charset;
  for (const auto& [key, value] : parsed->media_type.parameters) {
    if (Lower(key) == "charset") {
      charset = value;
    }
  }
  if (media == "application/json") {
    // JSON is UTF-8 by definition (RFC 8259); a charset parameter other than that is a lie.
    if (!charset.empty() && CharsetByLabel(charset) != Charset::kUtf8) {
      return Failure(Outcome::kUnsupportedMediaType, "unsupported_charset",
                     "JSON bodies are UTF-8");
    }
    return ParseJson(body, limits);
  }
  if (media == "application/x-www-form-urlencoded") {
    return ParseUrlEncoded(body, charset, limits);
  }
  if (media == "multipart/form-data") {
    std::string boundary;
    for (const auto& [key, value] : parsed->media_type.parameters) {
      if (Lower(key) == "boundary") {
        boundary = value;
      }
    }
    return ParseMultipart(body, boundary, charset, limits);
  }
  return Failure(Outcome::kUnsupportedMediaType, "unsupported_media_type",
                 "use application/json, application/x-www-form-urlencoded or multipart/form-data");
}

}  // namespace leadflow::webform
