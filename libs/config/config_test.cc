#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace leadflow::config {
namespace {

Reader MakeReader(std::map<std::string, std::string> env) {
  std::vector<std::string> names;
  for (const auto& [name, value] : env) {
    names.push_back(name);
  }
  return Reader(
      "svc", "test", {"SVC_"},
      [env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) {
          return std::nullopt;
        }
        return it->second;
      },
      names);
}

// Protects: defaults apply when nothing is set, and --help names every variable.
TEST(ConfigTest, DefaultsAndHelp) {
  Reader reader = MakeReader({});
  EXPECT_EQ(reader.String("SVC_HOST", "localhost", "host"), "localhost");
  EXPECT_EQ(reader.Int("SVC_PORT", 8081, 0, 65535, "port"), 8081);
  EXPECT_TRUE(reader.Bool("SVC_ON", true, "switch"));
  EXPECT_EQ(reader.Secret("SVC_KEY", "key"), "");
  EXPECT_TRUE(reader.Finish().ok());
  std::string help = reader.Help();
  EXPECT_NE(help.find("SVC_HOST"), std::string::npos);
  EXPECT_NE(help.find("SVC_PORT"), std::string::npos);
  EXPECT_NE(help.find("(secret)"), std::string::npos);
}

// Protects: malformed values are all reported, each with its variable's name.
TEST(ConfigTest, MalformedValuesAreReportedTogether) {
  Reader reader = MakeReader({{"SVC_PORT", "80x"}, {"SVC_ON", "maybe"}, {"SVC_N", "70000"}});
  reader.Int("SVC_PORT", 1, 0, 65535, "port");
  reader.Bool("SVC_ON", false, "switch");
  reader.Int("SVC_N", 1, 0, 65535, "n");
  absl::Status status = reader.Finish();
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  std::string message(status.message());
  EXPECT_NE(message.find("SVC_PORT"), std::string::npos);
  EXPECT_NE(message.find("SVC_ON"), std::string::npos);
  EXPECT_NE(message.find("SVC_N"), std::string::npos);
}

// Protects: a typo in a variable name is an error, not a silently ignored setting.
TEST(ConfigTest, UnknownVariableWithOurPrefixIsRejected) {
  Reader reader = MakeReader({{"SVC_PROT", "1"}, {"OTHER_THING", "x"}});
  reader.Int("SVC_PORT", 1, 0, 65535, "port");
  absl::Status status = reader.Finish();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("SVC_PROT"), std::string::npos);
  EXPECT_EQ(status.message().find("OTHER_THING"), std::string::npos);
}

// Protects: secrets never show in --help output.
TEST(ConfigTest, SecretValueNeverInHelp) {
  Reader reader = MakeReader({{"SVC_KEY", "hunter2"}});
  EXPECT_EQ(reader.Secret("SVC_KEY", "key"), "hunter2");
  EXPECT_EQ(reader.Help().find("hunter2"), std::string::npos);
}

}  // namespace
// Protects: deployment checks run a binary with a manifest's environment and --check-config;
// a valid one exits 0 before the service starts, an invalid one still exits 2.
TEST(ConfigDeathTest, CheckConfigExitsWithTheVerdict) {
  char program[] = "svc";
  char flag[] = "--check-config";
  char* argv[] = {program, flag, nullptr};
  EXPECT_EXIT(
      {
        Reader reader = MakeReader({{"SVC_PORT", "80"}});
        reader.Int("SVC_PORT", 8081, 0, 65535, "port");
        FinishOrExit(reader, 2, argv);
        std::exit(3);  // reached only if --check-config did not stop here
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        Reader reader = MakeReader({{"SVC_PORT", "80"}, {"SVC_TYPO", "1"}});
        reader.Int("SVC_PORT", 8081, 0, 65535, "port");
        FinishOrExit(reader, 2, argv);
        std::exit(3);
      },
      ::testing::ExitedWithCode(2), "SVC_TYPO");
}

}  // namespace leadflow::config
