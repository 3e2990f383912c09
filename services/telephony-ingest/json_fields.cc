#include "telephony-ingest/json_fields.h"

#include <simdjson.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace leadflow::telephony {
namespace {

// Which of `names` `key` is, or names.size().
size_t Find(std::span<const std::string_view> names, std::string_view key) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == key) {
      return i;
    }
  }
  return names.size();
}

}  // namespace

bool ReadJsonFields(std::string_view text, std::span<const std::string_view> names,
                    std::span<JsonField> fields) {
  // One parser per thread, reused for texts up to 64 KiB (a call report is a few hundred
  // bytes): its buffers, a few times the largest text it read, stay at most that; a larger
  // text (TELEPHONY_MAX_BODY_BYTES allows 1 MiB) gets a parser of its own, freed after it.
  constexpr size_t kReusedUpTo = 64 * 1024;
  thread_local simdjson::dom::parser reused;
  simdjson::dom::parser own;
  simdjson::dom::parser& parser = text.size() <= kReusedUpTo ? reused : own;
  simdjson::dom::object object;
  if (parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(object) !=
      simdjson::SUCCESS) {
    return false;
  }
  for (JsonField& field : fields) {
    field = JsonField{};
  }
  for (simdjson::dom::key_value_pair member : object) {
    const size_t index = Find(names, member.key);
    if (index == names.size()) {
      continue;
    }
    JsonField& field = fields[index];
    field = JsonField{};  // a repeated name: the last one stands
    const simdjson::dom::element& value = member.value;
    switch (value.type()) {
      case simdjson::dom::element_type::NULL_VALUE:
        field.kind = JsonField::Kind::kNull;
        break;
      case simdjson::dom::element_type::STRING:
        field.kind = JsonField::Kind::kString;
        field.text = std::string_view(value.get_string().value_unsafe());
        break;
      case simdjson::dom::element_type::INT64: {
        const int64_t number = value.get_int64().value_unsafe();
        field.kind = JsonField::Kind::kInteger;
        field.text = absl::StrCat(number);
        field.number = static_cast<double>(number);
        break;
      }
      case simdjson::dom::element_type::UINT64: {
        const uint64_t number = value.get_uint64().value_unsafe();
        field.kind = JsonField::Kind::kInteger;
        field.text = absl::StrCat(number);
        field.number = static_cast<double>(number);
        break;
      }
      case simdjson::dom::element_type::DOUBLE:
        field.kind = JsonField::Kind::kFloat;
        field.number = value.get_double().value_unsafe();
        break;
      case simdjson::dom::element_type::BOOL:
        field.kind = JsonField::Kind::kBool;
        field.number = value.get_bool().value_unsafe() ? 1 : 0;
        break;
      default:
        field.kind = JsonField::Kind::kOther;
        break;
    }
  }
  return true;
}

bool ReadJsonFieldsReference(std::string_view text, std::span<const std::string_view> names,
                             std::span<JsonField> fields, bool* not_json) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  *not_json = json.is_discarded();
  if (json.is_discarded() || !json.is_object()) {
    return false;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    JsonField& field = fields[i];
    field = JsonField{};
    auto it = json.find(names[i]);
    if (it == json.end()) {
      continue;
    }
    if (it->is_null()) {
      field.kind = JsonField::Kind::kNull;
    } else if (it->is_string()) {
      field.kind = JsonField::Kind::kString;
      field.text = it->get<std::string>();
    } else if (it->is_number_integer()) {
      field.kind = JsonField::Kind::kInteger;
      field.text = it->dump();
      field.number = it->get<double>();
    } else if (it->is_number()) {
      field.kind = JsonField::Kind::kFloat;
      field.number = it->get<double>();
    } else if (it->is_boolean()) {
      field.kind = JsonField::Kind::kBool;
      field.number = it->get<bool>() ? 1 : 0;
    } else {
      field.kind = JsonField::Kind::kOther;
    }
  }
  return true;
}

}  // namespace leadflow::telephony
