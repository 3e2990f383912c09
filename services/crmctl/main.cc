// crmctl: calls any method of crm-core's gRPC API with a JSON request and prints the JSON answer.
//   crmctl [--address HOST:PORT] [--key API_KEY] [--user USER_ID] Service/Method ['{"json":
//   "request"}'] crmctl LeadService/ListLeads '{"status_id": "NEW"}' crmctl
//   ActivityService/ListEmailMessages '{"activity_id": 9}'   (the mail kept with it)
// Service names may omit the "leadflow.crm.v1." package. The key defaults to $LEADFLOW_API_KEY,
// the address to $LEADFLOW_GRPC_ADDRESS or 127.0.0.1:50051; --user (or $LEADFLOW_USER_ID) names the
// user a write acts for (x-leadflow-user-id, what history records as "who"); --timeout is in
// seconds (a fraction allowed, at most a day). Exit status: 0 OK, 1 the call failed
// (stderr: "crmctl: NOT_FOUND (5): message"; stdout: {"code": 5}), 2 usage.
// TLS: --tls (the system's CAs), or --ca-file (a private CA; $LEADFLOW_TLS_CA_FILE); a client
// certificate for mutual TLS with --cert-file/--key-file ($LEADFLOW_TLS_CERT_FILE/_KEY_FILE);
// --server-name checks the certificate against another name than the address's host.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "leadflow/crm/v1/activity.pb.h"
#include "leadflow/crm/v1/call.pb.h"
#include "leadflow/crm/v1/company.pb.h"
#include "leadflow/crm/v1/contact.pb.h"
#include "leadflow/crm/v1/deal.pb.h"
#include "leadflow/crm/v1/history.pb.h"
#include "leadflow/crm/v1/lead.pb.h"
#include "leadflow/crm/v1/pipeline.pb.h"
#include "leadflow/crm/v1/search.pb.h"
#include "leadflow/crm/v1/settings.pb.h"
#include "leadflow/crm/v1/status.pb.h"
#include "leadflow/crm/v1/user.pb.h"

namespace {

int Usage() {
  std::fputs(
      "usage: crmctl [--address HOST:PORT] [--key API_KEY] [--user USER_ID] [--timeout SECONDS]\n"
      "              [--tls] [--ca-file PEM] [--cert-file PEM --key-file PEM]\n"
      "              [--server-name NAME] Service/Method [JSON]\n",
      stderr);
  return 2;
}

// --timeout: seconds, a fraction allowed, in (0, 86400]; nullopt for anything else.
std::optional<std::chrono::milliseconds> ParseTimeout(const std::string& text) {
  double seconds = 0;
  const char* end = text.data() + text.size();
  auto [parsed_end, error] = std::from_chars(text.data(), end, seconds);
  if (text.empty() || error != std::errc() || parsed_end != end || !(seconds > 0) ||
      seconds > 86400) {
    return std::nullopt;
  }
  auto milliseconds = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  return std::max(milliseconds, std::chrono::milliseconds(1));
}

// --user: a positive decimal id of at most 18 digits (crm-core reads it as int64).
bool IsUserId(const std::string& text) {
  return !text.empty() && text.size() <= 18 && text[0] != '0' &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The canonical name of a gRPC status code, as the API documentation spells it (absl's status
// codes are gRPC's, number for number).
std::string CodeName(grpc::StatusCode code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

const char* EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

bool ReadFile(const std::string& path, std::string* text) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    std::fprintf(stderr, "crmctl: cannot open %s\n", path.c_str());
    return false;
  }
  text->assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using google::protobuf::DescriptorPool;
  using google::protobuf::DynamicMessageFactory;
  std::string address = EnvOr("LEADFLOW_GRPC_ADDRESS", "127.0.0.1:50051");
  std::string key = EnvOr("LEADFLOW_API_KEY", "");
  std::string ca_file = EnvOr("LEADFLOW_TLS_CA_FILE", "");
  std::string cert_file = EnvOr("LEADFLOW_TLS_CERT_FILE", "");
  std::string key_file = EnvOr("LEADFLOW_TLS_KEY_FILE", "");
  std::string server_name;
  bool tls = false;
  std::string user = EnvOr("LEADFLOW_USER_ID", "");
  std::string timeout = "10";
  std::string method_name;
  std::string json = "{}";
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--address" || arg == "--key" || arg == "--timeout" || arg == "--user" ||
         arg == "--ca-file" || arg == "--cert-file" || arg == "--key-file" ||
         arg == "--server-name") &&
        i + 1 < argc) {
      std::string value = argv[++i];
      if (arg == "--address") {
        address = value;
      } else if (arg == "--key") {
        key = value;
      } else if (arg == "--ca-file") {
        ca_file = value;
      } else if (arg == "--cert-file") {
        cert_file = value;
      } else if (arg == "--key-file") {
        key_file = value;
      } else if (arg == "--server-name") {
        server_name = value;
      } else if (arg == "--user") {
        user = value;
      } else {
        timeout = value;
      }
    } else if (arg == "--tls") {
      tls = true;
    } else if (arg == "--help" || arg == "-h") {
      Usage();
      return 0;
    } else if (positional == 0) {
      method_name = arg;
      ++positional;
    } else if (positional == 1) {
      json = arg;
      ++positional;
    } else {
      return Usage();
    }
  }
  auto slash = method_name.find('/');
  if (slash == std::string::npos) {
    return Usage();
  }
  // Refused rather than read as something else: "abc" or "-1" would be an instant
  // DEADLINE_EXCEEDED, "5s" five seconds by luck.
  std::optional<std::chrono::milliseconds> deadline = ParseTimeout(timeout);
  if (!deadline) {
    std::fprintf(stderr,
                 "crmctl: --timeout takes a number of seconds, more than 0 and at most "
                 "86400 (a fraction allowed), got '%s'\n",
                 timeout.c_str());
    return 2;
  }
  if (!user.empty() && !IsUserId(user)) {
    std::fprintf(stderr, "crmctl: --user takes a user id (a number from 1), got '%s'\n",
                 user.c_str());
    return 2;
  }
  std::string service = method_name.substr(0, slash);
  if (service.find('.') == std::string::npos) {
    service = "leadflow.crm.v1." + service;
  }
  // Make sure the generated descriptors are linked in and registered: one message per file.
  const google::protobuf::FileDescriptor* files[] = {
      leadflow::crm::v1::Lead::descriptor()->file(),
      leadflow::crm::v1::Activity::descriptor()->file(),
      leadflow::crm::v1::User::descriptor()->file(),
      leadflow::crm::v1::Status::descriptor()->file(),
      leadflow::crm::v1::Contact::descriptor()->file(),
      leadflow::crm::v1::Company::descriptor()->file(),
      leadflow::crm::v1::Pipeline::descriptor()->file(),
      leadflow::crm::v1::Deal::descriptor()->file(),
      leadflow::crm::v1::CrmSettings::descriptor()->file(),
      leadflow::crm::v1::ListHistoryRequest::descriptor()->file(),
      leadflow::crm::v1::SearchMatch::descriptor()->file(),
      leadflow::crm::v1::UnidentifiedCall::descriptor()->file()};
  const auto* service_descriptor = DescriptorPool::generated_pool()->FindServiceByName(service);
  if (service_descriptor == nullptr) {
    // A typo is answered with what exists, not only with what does not.
    std::string known;
    for (const auto* file : files) {
      for (int i = 0; i < file->service_count(); ++i) {
        known += (known.empty() ? "" : ", ") + file->service(i)->name();
      }
    }
    std::fprintf(stderr, "crmctl: unknown service %s (services: %s)\n", service.c_str(),
                 known.c_str());
    return 2;
  }
  const auto* method = service_descriptor->FindMethodByName(method_name.substr(slash + 1));
  if (method == nullptr) {
    std::string known;
    for (int i = 0; i < service_descriptor->method_count(); ++i) {
      known += (i == 0 ? "" : ", ") + service_descriptor->method(i)->name();
    }
    std::fprintf(stderr, "crmctl: %s has no method %s (methods: %s)\n", service.c_str(),
                 method_name.substr(slash + 1).c_str(), known.c_str());
    return 2;
  }
  DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(method->input_type())->New());
  std::unique_ptr<google::protobuf::Message> response(
      factory.GetPrototype(method->output_type())->New());
  auto parsed = google::protobuf::util::JsonStringToMessage(json, request.get());
  if (!parsed.ok()) {
    std::fprintf(stderr, "crmctl: request is not a valid %s: %s\n",
                 method->input_type()->full_name().c_str(), parsed.ToString().c_str());
    return 2;
  }
  std::string serialized;
  request->SerializeToString(&serialized);
  grpc::Slice slice(serialized);
  grpc::ByteBuffer send(&slice, 1);

  // Any TLS option (flag or variable) turns TLS on: an API key must not cross a network in clear
  // because one option was given without the others.
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments channel_arguments;
  if (tls || !ca_file.empty() || !cert_file.empty() || !key_file.empty() || !server_name.empty()) {
    if (cert_file.empty() != key_file.empty()) {
      std::fputs("crmctl: --cert-file and --key-file go together\n", stderr);
      return 2;
    }
    grpc::SslCredentialsOptions options;
    if ((!ca_file.empty() && !ReadFile(ca_file, &options.pem_root_certs)) ||
        (!cert_file.empty() && (!ReadFile(cert_file, &options.pem_cert_chain) ||
                                !ReadFile(key_file, &options.pem_private_key)))) {
      return 2;
    }
    credentials = grpc::SslCredentials(options);
    if (!server_name.empty()) {
      channel_arguments.SetSslTargetNameOverride(server_name);
    }
  }
  auto channel = grpc::CreateCustomChannel(address, credentials, channel_arguments);
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + *deadline);
  if (!key.empty()) {
    context.AddMetadata("authorization", "Bearer " + key);
  }
  if (!user.empty()) {
    context.AddMetadata("x-leadflow-user-id", user);
  }
  grpc::ByteBuffer received;
  std::mutex mutex;
  std::condition_variable done_signal;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/" + service + "/" + method->name(), grpc::StubOptions(), &send,
                 &received, [&](grpc::Status result) {
                   std::lock_guard lock(mutex);
                   status = std::move(result);
                   done = true;
                   done_signal.notify_one();
                 });
  {
    std::unique_lock lock(mutex);
    done_signal.wait(lock, [&] { return done; });
  }
  if (!status.ok()) {
    std::fprintf(stderr, "crmctl: %s (%d): %s\n", CodeName(status.error_code()).c_str(),
                 static_cast<int>(status.error_code()), status.error_message().c_str());
    std::printf("{\"code\": %d}\n", static_cast<int>(status.error_code()));
    return 1;
  }
  std::vector<grpc::Slice> slices;
  received.Dump(&slices);
  std::string bytes;
  for (const auto& part : slices) {
    bytes.append(reinterpret_cast<const char*>(part.begin()), part.size());
  }
  response->ParseFromString(bytes);
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  google::protobuf::util::MessageToJsonString(*response, &out, options);
  std::cout << out;
  return 0;
}
