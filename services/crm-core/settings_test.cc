#include "crm-core/settings.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace leadflow::crm {
namespace {

absl::Status Check(std::map<std::string, std::string> env) {
  std::vector<std::string> names;
  for (const auto& [name, value] : env) {
    names.push_back(name);
  }
  config::Reader reader(
      "crm-core", "test", {"CRM_"},
      [env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      },
      names);
  ReadSettings(reader, "serve");
  return reader.Finish();
}

const std::map<std::string, std::string> kApi = {{"CRM_ROLES", "api"},
                                                 {"CRM_API_KEYS", "key-0123456789abcdef:admin"}};

std::map<std::string, std::string> Api(std::map<std::string, std::string> more) {
  more.insert(kApi.begin(), kApi.end());
  return more;
}

// Protects: API keys never cross a network in clear by accident. Without TLS the API may listen
// only on loopback; anything wider needs CRM_GRPC_PLAINTEXT=true, said explicitly.
TEST(SettingsTest, PlaintextBeyondLoopbackIsRefused) {
  EXPECT_TRUE(Check(Api({})).ok());  // default 127.0.0.1:50051
  EXPECT_TRUE(Check(Api({{"CRM_GRPC_ADDRESS", "localhost:50051"}})).ok());
  EXPECT_TRUE(Check(Api({{"CRM_GRPC_ADDRESS", "[::1]:50051"}})).ok());
  for (const char* address : {"0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "crm:50051"}) {
    absl::Status status = Check(Api({{"CRM_GRPC_ADDRESS", address}}));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_NE(status.message().find("CRM_GRPC_ADDRESS"), absl::string_view::npos) << address;
  }
  EXPECT_TRUE(
      Check(Api({{"CRM_GRPC_ADDRESS", "0.0.0.0:50051"}, {"CRM_GRPC_PLAINTEXT", "true"}})).ok());
  EXPECT_TRUE(Check(Api({{"CRM_GRPC_ADDRESS", "0.0.0.0:50051"},
                         {"CRM_TLS_CERT_FILE", "/tls/tls.crt"},
                         {"CRM_TLS_KEY_FILE", "/tls/tls.key"}}))
                  .ok());
}

// Protects: asking for plaintext and giving a certificate at once is a contradiction, refused.
TEST(SettingsTest, PlaintextAndCertificateConflict) {
  absl::Status status = Check(Api({{"CRM_GRPC_PLAINTEXT", "true"},
                                   {"CRM_TLS_CERT_FILE", "/tls/tls.crt"},
                                   {"CRM_TLS_KEY_FILE", "/tls/tls.key"}}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

// Protects: the consumer role opens no gRPC port, so its address needs no TLS.
TEST(SettingsTest, ConsumerNeedsNoTls) {
  EXPECT_TRUE(Check({{"CRM_ROLES", "consumer"},
                     {"CRM_KAFKA_BROKERS", "kafka:9092"},
                     {"CRM_GRPC_ADDRESS", "0.0.0.0:50051"}})
                  .ok());
}

// Protects: the trusted Reply-To mailboxes are addresses, normalised; anything else is refused
// naming the variable, and by default none is trusted.
TEST(SettingsTest, ReplyToTrustedMailboxes) {
  EXPECT_TRUE(
      Check(Api({{"CRM_EMAIL_REPLY_TO_TRUSTED_MAILBOXES", " Forms@Acme.test, x@y.z"}})).ok());
  absl::Status bad =
      Check(Api({{"CRM_EMAIL_REPLY_TO_TRUSTED_MAILBOXES", "forms@acme.test,forms"}}));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("CRM_EMAIL_REPLY_TO_TRUSTED_MAILBOXES"), std::string::npos);
  config::Reader defaults(
      "crm-core", "test", {"CRM_"},
      [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
  EXPECT_TRUE(ReadSettings(defaults, "migrate").rules.reply_to_trusted_mailboxes.empty());
  config::Reader given("crm-core", "test", {"CRM_"},
                       [](const std::string& name) -> std::optional<std::string> {
                         if (name != "CRM_EMAIL_REPLY_TO_TRUSTED_MAILBOXES") return std::nullopt;
                         return " Forms@Acme.test, x@y.z";
                       });
  EXPECT_EQ(ReadSettings(given, "migrate").rules.reply_to_trusted_mailboxes,
            (std::set<std::string>{"forms@acme.test", "x@y.z"}));
}

// Protects: the public mail domains default to the documented list and a given list replaces
// it (a domain or "name.*", any case); own domains are plain domains; anything else is refused
// naming the setting.
TEST(SettingsTest, PublicAndOwnMailDomains) {
  config::Reader defaults(
      "crm-core", "test", {"CRM_"},
      [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
  const Settings settings = ReadSettings(defaults, "migrate");
  EXPECT_EQ(settings.rules.public_mail_domains, domain::DefaultPublicMailDomains());
  EXPECT_TRUE(settings.rules.own_mail_domains.empty());
  const std::map<std::string, std::string> env = {
      {"CRM_EMAIL_PUBLIC_DOMAINS", " GMail.com, gmx.* "},
      {"CRM_EMAIL_OWN_DOMAINS", "Acme.test,staff.acme.test"}};
  config::Reader given(
      "crm-core", "test", {"CRM_"}, [env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      });
  const Settings read = ReadSettings(given, "migrate");
  EXPECT_EQ(read.rules.public_mail_domains, (std::vector<std::string>{"gmail.com", "gmx.*"}));
  EXPECT_EQ(read.rules.own_mail_domains, (std::set<std::string>{"acme.test", "staff.acme.test"}));
  for (const char* bad : {"gmail", "*.gmail.com", "a@gmail.com", "gm ail.com"}) {
    absl::Status refused = Check(Api({{"CRM_EMAIL_PUBLIC_DOMAINS", bad}}));
    EXPECT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.message().find("CRM_EMAIL_PUBLIC_DOMAINS"), std::string::npos);
  }
  for (const char* bad : {"acme", "acme.*", "x@acme.test"}) {
    absl::Status refused = Check(Api({{"CRM_EMAIL_OWN_DOMAINS", bad}}));
    EXPECT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.message().find("CRM_EMAIL_OWN_DOMAINS"), std::string::npos);
  }
}

}  // namespace
}  // namespace leadflow::crm
