#include "webform-ingest/forms.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace leadflow::webform {

absl::StatusOr<FormsConfig> FormsConfig::Parse(const std::string& json) {
  nlohmann::json document = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  auto forms = document.find("forms");
  if (forms == document.end() || !forms->is_object()) {
    return absl::InvalidArgumentError("\"forms\" must be an object of form ids");
  }
  FormsConfig config;
  config.restricted = true;
  for (const auto& [form_id, form] : forms->items()) {
    if (!ValidFormId(form_id)) {
      return absl::InvalidArgumentError(absl::StrCat("form id '", form_id, "' is not valid"));
    }
    std::vector<std::string>& origins = config.allowed_origins[form_id];
    if (!form.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("form '", form_id, "' must be an object"));
    }
    for (const char* key : {"success_url", "error_url"}) {
      auto url = form.find(key);
      if (url == form.end()) {
        continue;
      }
      if (!url->is_string() || !ValidPageUrl(url->get<std::string>())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "form '", form_id, "': ", key, " must be an absolute http(s) URL without spaces"));
      }
      FormPages& pages = config.pages[form_id];
      (std::string(key) == "success_url" ? pages.success_url : pages.error_url) =
          url->get<std::string>();
    }
    auto allowed = form.find("allowed_origins");
    if (allowed == form.end()) {
      continue;
    }
    if (!allowed->is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("form '", form_id, "': allowed_origins must be an array of strings"));
    }
    for (const auto& origin : *allowed) {
      if (!origin.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("form '", form_id, "': allowed_origins must be an array of strings"));
      }
      origins.push_back(origin.get<std::string>());
    }
  }
  return config;
}

absl::StatusOr<FormsConfig> FormsConfig::Load(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::stringstream text;
  text << file.rdbuf();
  auto config = Parse(text.str());
  if (!config.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

bool FormsConfig::Known(const std::string& form_id) const {
  return !restricted || allowed_origins.count(form_id) > 0;
}

OriginDecision DecideOrigin(const FormsConfig& forms, const std::string& form_id,
                            const std::optional<std::string>& origin) {
  if (!origin || origin->empty()) {
    return OriginDecision::kNoOrigin;
  }
  if (!forms.restricted) {
    return OriginDecision::kAllowed;
  }
  auto found = forms.allowed_origins.find(form_id);
  if (found == forms.allowed_origins.end()) {
    return OriginDecision::kForbidden;
  }
  // Origins compare as serialised by browsers: scheme://host[:port], case-insensitive host.
  std::string wanted = absl::AsciiStrToLower(*origin);
  bool allowed = std::any_of(found->second.begin(), found->second.end(), [&](const auto& entry) {
    return entry == "*" || absl::AsciiStrToLower(entry) == wanted;
  });
  return allowed ? OriginDecision::kAllowed : OriginDecision::kForbidden;
}

bool ValidPageUrl(const std::string& url) {
  std::string lower = absl::AsciiStrToLower(url);
  bool scheme = lower.rfind("https://", 0) == 0 || lower.rfind("http://", 0) == 0;
  return scheme && url.size() <= 2048 && std::all_of(url.begin(), url.end(), [](char c) {
           auto byte = static_cast<unsigned char>(c);
           return byte > 0x20 &&
                  byte < 0x7f;  // no spaces, controls (header injection) or raw UTF-8
         });
}

const FormPages* FormsConfig::Pages(const std::string& form_id) const {
  auto found = pages.find(form_id);
  return found == pages.end() ? nullptr : &found->second;
}

bool ValidFormId(const std::string& form_id) {
  return !form_id.empty() && form_id.size() <= 64 &&
         std::all_of(form_id.begin(), form_id.end(), [](char c) {
           return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
         });
}

}  // namespace leadflow::webform
