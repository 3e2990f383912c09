#include "config/config.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace leadflow::config {
namespace {

std::optional<std::string> GetEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return std::nullopt;
  }
  return std::string(value);
}

std::vector<std::string> EnvironmentNames() {
  std::vector<std::string> names;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* equals = std::strchr(*entry, '=');
    if (equals != nullptr) {
      names.emplace_back(*entry, equals - *entry);
    }
  }
  return names;
}

}  // namespace

Reader::Reader(std::string program, std::string summary, std::vector<std::string> prefixes,
               EnvLookup lookup, std::vector<std::string> environment_names)
    : program_(std::move(program)), summary_(std::move(summary)), prefixes_(std::move(prefixes)) {
  if (lookup) {
    lookup_ = std::move(lookup);
    environment_names_ = std::move(environment_names);
  } else {
    lookup_ = GetEnv;
    environment_names_ = EnvironmentNames();
  }
}

std::optional<std::string> Reader::Lookup(const std::string& name, const std::string& default_value,
                                          const std::string& help, bool secret) {
  variables_.push_back({name, default_value, help, secret});
  return lookup_(name);
}

std::string Reader::String(const std::string& name, const std::string& default_value,
                           const std::string& help) {
  return Lookup(name, default_value, help, false).value_or(default_value);
}

std::string Reader::Secret(const std::string& name, const std::string& help) {
  return Lookup(name, "", help, true).value_or("");
}

int64_t Reader::Int(const std::string& name, int64_t default_value, int64_t min, int64_t max,
                    const std::string& help) {
  auto raw = Lookup(name, std::to_string(default_value),
                    absl::StrCat(help, " [", min, "..", max, "]"), false);
  if (!raw) {
    return default_value;
  }
  std::string text(absl::StripAsciiWhitespace(*raw));
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    Fail(name, absl::StrCat("'", *raw, "' is not a whole number"));
    return default_value;
  }
  if (value < min || value > max) {
    Fail(name, absl::StrCat(value, " is outside ", min, "..", max));
    return default_value;
  }
  return value;
}

bool Reader::Bool(const std::string& name, bool default_value, const std::string& help) {
  auto raw = Lookup(name, default_value ? "true" : "false", help, false);
  if (!raw) {
    return default_value;
  }
  std::string text = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*raw));
  if (text == "true" || text == "1" || text == "yes" || text == "on") {
    return true;
  }
  if (text == "false" || text == "0" || text == "no" || text == "off") {
    return false;
  }
  Fail(name, absl::StrCat("'", *raw, "' is not a boolean (true/false)"));
  return default_value;
}

std::chrono::milliseconds Reader::Millis(const std::string& name,
                                         std::chrono::milliseconds default_value,
                                         const std::string& help) {
  return std::chrono::milliseconds(Int(name, default_value.count(), 0, 24LL * 3600 * 1000,
                                       absl::StrCat(help, ", milliseconds")));
}

void Reader::Fail(const std::string& name, const std::string& problem) {
  errors_.push_back(absl::StrCat(name, ": ", problem));
}

std::string Reader::Help() const {
  std::string text = absl::StrCat(program_, " — ", summary_, "\n\nEnvironment variables:\n");
  for (const Variable& variable : variables_) {
    absl::StrAppend(&text, "  ", variable.name, "\n      ", variable.help);
    if (variable.secret) {
      absl::StrAppend(&text, " (secret)\n");
    } else {
      absl::StrAppend(&text, " (default: '", variable.default_value, "')\n");
    }
  }
  absl::StrAppend(&text,
                  "\n--check-config validates the environment, says so and exits (0: valid, "
                  "2: not).\n");
  return text;
}

absl::Status Reader::Finish() const {
  std::vector<std::string> problems = errors_;
  for (const std::string& name : environment_names_) {
    bool ours = std::any_of(prefixes_.begin(), prefixes_.end(),
                            [&](const std::string& prefix) { return name.rfind(prefix, 0) == 0; });
    bool known = std::any_of(variables_.begin(), variables_.end(),
                             [&](const Variable& variable) { return variable.name == name; });
    if (ours && !known) {
      problems.push_back(absl::StrCat(name, ": unknown variable (see --help)"));
    }
  }
  if (problems.empty()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

void FinishOrExit(const Reader& reader, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(reader.Help().c_str(), stdout);
      std::exit(0);
    }
  }
  absl::Status status = reader.Finish();
  if (!status.ok()) {
    std::fprintf(stderr, "configuration error:\n%s\n", std::string(status.message()).c_str());
    std::exit(2);
  }
  // Deployment checks run the binary with a manifest's environment: valid means exit 0 here,
  // before anything connects anywhere.
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--check-config") == 0) {
      std::fputs("configuration OK\n", stdout);
      std::exit(0);
    }
  }
}

}  // namespace leadflow::config
