#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace leadflow::config {

/// Looks up one environment variable; std::nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

/// Reads a service's typed configuration from environment variables (the Kubernetes way).
///
/// Every read registers the variable with its default and help text, so that `--help` lists all
/// of them and a malformed value is reported with the variable's name. Call Finish() once after
/// the last read: it reports every problem at once instead of stopping at the first.
class Reader {
 public:
  /// `prefixes`: variables starting with one of these that nobody read are rejected as typos.
  Reader(std::string program, std::string summary, std::vector<std::string> prefixes,
         EnvLookup lookup = {}, std::vector<std::string> environment_names = {});

  std::string String(const std::string& name, const std::string& default_value,
                     const std::string& help);
  /// Never printed, never logged. Empty when unset.
  std::string Secret(const std::string& name, const std::string& help);
  int64_t Int(const std::string& name, int64_t default_value, int64_t min, int64_t max,
              const std::string& help);
  bool Bool(const std::string& name, bool default_value, const std::string& help);
  std::chrono::milliseconds Millis(const std::string& name, std::chrono::milliseconds default_value,
                                   const std::string& help);

  /// Adds a problem found by the service's own validation (e.g. two settings that conflict).
  void Fail(const std::string& name, const std::string& problem);

  /// The text of `--help`.
  std::string Help() const;
  /// OK, or InvalidArgument listing every bad or unknown variable, one per line.
  absl::Status Finish() const;

 private:
  struct Variable {
    std::string name;
    std::string default_value;
    std::string help;
    bool secret = false;
  };
  std::optional<std::string> Lookup(const std::string& name, const std::string& default_value,
                                    const std::string& help, bool secret);

  std::string program_;
  std::string summary_;
  std::vector<std::string> prefixes_;
  EnvLookup lookup_;
  std::vector<std::string> environment_names_;
  std::vector<Variable> variables_;
  std::vector<std::string> errors_;
};

/// For a service's main(): prints --help and exits 0, or prints the problems and exits 2;
/// with --check-config, exits 0 after a valid configuration without starting anything.
void FinishOrExit(const Reader& reader, int argc, char** argv);

}  // namespace leadflow::config
