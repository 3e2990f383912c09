#include "e2e/stack.h"

#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

namespace leadflow::e2e {
CrmCore::CrmCore(const std::string& database_url, const std::string& brokers,
                 const std::string& group, std::map<std::string, std::string> extra_env,
                 std::optional<redis::Options> redis_options, const std::string& binary) {
  redis::Options redis = redis_options ? *redis_options : testing::RedisTestOptions();
  env_ = {
      {"CRM_DATABASE_URL", database_url},
      {"CRM_KAFKA_BROKERS", brokers},
      {"CRM_KAFKA_GROUP_ID", group},
      {"CRM_REDIS_HOST", redis.host},
      {"CRM_REDIS_PORT", std::to_string(redis.port)},
      {"CRM_REDIS_PREFIX", redis.key_prefix},
      {"CRM_API_KEYS", kAdminKey + ":admin," + kReaderKey + ":read-only"},
  };
  for (auto& [name, value] : extra_env) {
    env_[name] = value;
  }
  argv_ = {testing::BuildDir() + "/services/crm-core/" + binary, "serve"};
  PickPorts();
  Start();
}

void CrmCore::PickPorts() {
  grpc_address_ = absl::StrCat("127.0.0.1:", testing::FreePort());
  http_port_ = testing::FreePort();
  env_["CRM_GRPC_ADDRESS"] = grpc_address_;
  env_["CRM_HTTP_PORT"] = std::to_string(http_port_);
}

void CrmCore::Start() { process_ = std::make_unique<testing::Process>(argv_, env_, "crm-core"); }

bool CrmCore::Restart() {
  for (int start = 0; start < 3; ++start) {
    process_.reset();  // SIGKILL and reap
    PickPorts();
    Start();
    if (WaitReady()) {
      return true;
    }
  }
  return false;
}

bool CrmCore::WaitReady() {
  auto ready = [&] {
    std::string log = process_->Log();
    return log.find("gRPC API on") != std::string::npos &&
           log.find("kafka: assigned") != std::string::npos;
  };
  testing::WaitFor([&] { return ready() || !process_->Running(); }, std::chrono::seconds(60));
  return ready() && process_->Running();
}

WebformIngest::WebformIngest(const std::string& brokers,
                             std::map<std::string, std::string> extra_env,
                             std::optional<redis::Options> redis_options) {
  redis::Options redis = redis_options ? *redis_options : testing::RedisTestOptions();
  env_ = {
      {"WEBFORM_KAFKA_BROKERS", brokers},
      {"WEBFORM_REDIS_HOST", redis.host},
      {"WEBFORM_REDIS_PORT", std::to_string(redis.port)},
      {"WEBFORM_REDIS_PREFIX", redis.key_prefix},
      {"WEBFORM_RATE_LIMIT_PER_MINUTE", "0"},
      // Every test client is 127.0.0.1: load tests open more connections than one client may.
      {"WEBFORM_MAX_CONNECTIONS_PER_CLIENT", "0"},
  };
  for (auto& [name, value] : extra_env) {
    env_[name] = value;
  }
  PickPorts();
  Start();
}

void WebformIngest::PickPorts() {
  port_ = testing::FreePort();
  ops_port_ = testing::FreePort();
  env_["WEBFORM_HTTP_PORT"] = std::to_string(port_);
  env_["WEBFORM_OPS_PORT"] = std::to_string(ops_port_);
}

void WebformIngest::Start() {
  process_ = std::make_unique<testing::Process>(
      std::vector<std::string>{testing::BuildDir() + "/services/webform-ingest/webform-ingest"},
      env_, "webform-ingest");
}

bool WebformIngest::Restart() {
  for (int start = 0; start < 3; ++start) {
    process_.reset();  // SIGKILL and reap
    PickPorts();
    Start();
    if (WaitReady()) {
      return true;
    }
  }
  return false;
}

bool WebformIngest::WaitReady() {
  auto ready = [&] {
    return testing::Shell("curl -s -o /dev/null -w '%{http_code}' " + ops_url() + "/readyz") ==
           "200";
  };
  bool became_ready = false;
  testing::WaitFor(
      [&] {
        became_ready = ready();
        return became_ready || !process_->Running();
      },
      std::chrono::seconds(30));
  return became_ready && process_->Running();
}

bool Migrate(const std::string& database_url) {
  testing::Process migrate({testing::BuildDir() + "/services/crm-core/crm-core", "migrate"},
                           {{"CRM_DATABASE_URL", database_url}}, "crm-core-migrate");
  int status = migrate.Wait(std::chrono::seconds(60));
  return status == 0;
}

nlohmann::json Call(const std::string& address, const std::string& method,
                    const nlohmann::json& request, const std::string& key) {
  std::string command = absl::StrCat(testing::BuildDir(), "/services/crmctl/crmctl --address ",
                                     address, " --key ", testing::ShellQuote(key), " ", method, " ",
                                     testing::ShellQuote(request.dump()), " 2>/dev/null");
  std::string output = testing::Shell(command);
  return nlohmann::json::parse(output, nullptr, false);
}

int64_t Count(const std::string& database_url, const std::string& sql) {
  pqxx::connection connection(database_url);
  pqxx::read_transaction work(connection);
  auto row = work.exec1(sql);
  return row[0].is_null() ? 0 : row[0].as<int64_t>();
}

}  // namespace leadflow::e2e
