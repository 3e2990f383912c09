// Who and what a write leaves on the timelines, over gRPC against real PostgreSQL: every write
// method of every crm-core service — found by walking the service descriptors of
// leadflow/crm/v1, so that a method added later is walked too — refuses an acting user
// (x-leadflow-user-id) that is not an active user and writes nothing, and with an active one
// every history entry and stage history row it writes names that user; deal amounts read in
// major units; a converted deal is created once; links a deal is created with and links a merge
// moves show on the timelines.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "leadflow/crm/v1/common.pb.h"
#include "leadflow/crm/v1/history.grpc.pb.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

constexpr char kKey[] = "test-admin-key-0123456789";
constexpr int64_t kUnknownUser = 999;

// Methods that only read: Get*, List*, Find*. Every other method is a write.
bool IsRead(const MethodDescriptor& method) {
  for (const char* prefix : {"Get", "List", "Find"}) {
    if (method.name().rfind(prefix, 0) == 0) {
      return true;
    }
  }
  return false;
}

// Every method of every service in leadflow/crm/v1 (the .proto files in the source tree, their
// descriptors from the linked generated code).
std::vector<const MethodDescriptor*> AllMethods() {
  std::vector<std::string> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(LEADFLOW_PROTO_DIR "/leadflow/crm/v1")) {
    if (entry.path().extension() == ".proto") {
      files.push_back("leadflow/crm/v1/" + entry.path().filename().string());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<const MethodDescriptor*> methods;
  for (const std::string& name : files) {
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
    EXPECT_NE(file, nullptr) << name << " is not linked into the test";
    if (file == nullptr) {
      continue;
    }
    for (int s = 0; s < file->service_count(); ++s) {
      for (int m = 0; m < file->service(s)->method_count(); ++m) {
        methods.push_back(file->service(s)->method(m));
      }
    }
  }
  return methods;
}

// "ContactService.CreateContact"
std::string ShortName(const MethodDescriptor& method) {
  return absl::StrCat(method.service()->name(), ".", method.name());
}

struct Reply {
  grpc::Status status;
  std::unique_ptr<Message> message;
};

class HistoryWritesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ =
        std::make_unique<testing::CrmApi>(testing::CrmApiOptions{.keys = {{kKey, Role::kAdmin}}});
    user_ =
        Scalar("INSERT INTO users (name, email) VALUES ('Ann', 'ann@example.com') RETURNING id");
    ASSERT_GT(user_, 0);
  }

  int64_t Scalar(const std::string& sql) { return api_->Scalar(sql); }
  std::string Text(const std::string& sql) { return api_->Text(sql); }

  // Calls `method` with `request` (text format) as `user` (0: no x-leadflow-user-id; the text
  // of `user_text` instead when it is not empty).
  Reply Call(const MethodDescriptor& method, const std::string& request, int64_t user,
             const std::string& user_text = "") {
    auto* factory = google::protobuf::MessageFactory::generated_factory();
    std::unique_ptr<Message> in(factory->GetPrototype(method.input_type())->New());
    Reply reply{.message =
                    std::unique_ptr<Message>(factory->GetPrototype(method.output_type())->New())};
    if (!google::protobuf::TextFormat::ParseFromString(request, in.get())) {
      ADD_FAILURE() << ShortName(method) << ": the test's request does not parse: " << request;
      reply.status = grpc::Status(grpc::StatusCode::INTERNAL, "bad test request");
      return reply;
    }
    auto context = testing::CallContext(kKey, 30s, user_text.empty() ? user : 0);
    if (!user_text.empty()) {
      context->AddMetadata("x-leadflow-user-id", user_text);
    }
    const std::string path = absl::StrCat("/", method.service()->full_name(), "/", method.name());
    reply.status = grpc::internal::BlockingUnaryCall<Message, Message>(
        api_->channel().get(),
        grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
        context.get(), *in, reply.message.get());
    return reply;
  }

  // Calls a method named "Service.Method" without an acting user, expecting success: how the
  // cases below make what their write needs.
  std::unique_ptr<Message> Make(const std::string& name, const std::string& request) {
    const MethodDescriptor* method =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName("leadflow.crm.v1." +
                                                                             name);
    EXPECT_NE(method, nullptr) << name;
    if (method == nullptr) {
      return nullptr;
    }
    Reply reply = Call(*method, request, 0);
    EXPECT_TRUE(reply.status.ok()) << name << ": " << reply.status.error_message();
    return std::move(reply.message);
  }

  // An int64 field along a dotted path ("contact.id").
  static int64_t Int(const Message* message, const std::string& path) {
    if (message == nullptr) {
      return 0;
    }
    const Message* current = message;
    std::vector<std::string> parts = absl::StrSplit(path, '.');
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto* field = current->GetDescriptor()->FindFieldByName(parts[i]);
      if (field == nullptr) {
        ADD_FAILURE() << "no field " << parts[i] << " in " << current->GetTypeName();
        return 0;
      }
      if (i + 1 == parts.size()) {
        return current->GetReflection()->GetInt64(*current, field);
      }
      current = &current->GetReflection()->GetMessage(*current, field);
    }
    return 0;
  }

  int64_t NewContact() {
    return Int(Make("ContactService.CreateContact",
                    absl::StrCat("contact { full_name: 'Marie Curie ", ++serial_, "' }"))
                   .get(),
               "contact.id");
  }
  int64_t NewCompany() {
    return Int(Make("CompanyService.CreateCompany",
                    absl::StrCat("company { name: 'Acme ", ++serial_, "' }"))
                   .get(),
               "company.id");
  }
  int64_t NewLead() {
    ++serial_;
    return Int(
        Make("LeadService.CreateLead",
             absl::StrCat("lead { title: 'Lead ", serial_, "' first_name: 'Léa' last_name: '",
                          "Martin", serial_, "' company_name: 'Martin SARL ", serial_,
                          "' phones: '+3368100", 1000 + serial_, "' }"))
            .get(),
        "id");
  }
  int64_t NewDeal() {
    return Int(
        Make("DealService.CreateDeal", absl::StrCat("deal { title: 'Deal ", ++serial_, "' }"))
            .get(),
        "id");
  }
  int64_t NewPipeline() {
    return Int(Make("PipelineService.CreatePipeline",
                    absl::StrCat("pipeline { name: 'Fit-out ", ++serial_, "' }"))
                   .get(),
               "id");
  }
  std::string NewSource() {
    const std::string id = absl::StrCat("FAIR_", ++serial_);
    Make("StatusService.CreateStatus", absl::StrCat("kind: STATUS_KIND_SOURCE status { id: '", id,
                                                    "' name: 'Fair ", serial_, "' }"));
    return id;
  }
  int64_t NewActivity(int64_t contact) {
    return Int(
        Make("ActivityService.CreateActivity",
             absl::StrCat("activity { type: ACTIVITY_TYPE_TASK owner_type: "
                          "OWNER_TYPE_CONTACT owner_id: ",
                          contact, " subject: 'Call back' deadline { seconds: 4102444800 } }"))
            .get(),
        "id");
  }

  // Every table's rows, hashed: equal before and after a call when it wrote nothing.
  std::string Fingerprint() {
    const std::string query = Text(
        "SELECT 'SELECT string_agg(x, '','' ORDER BY x) FROM (' || "
        "string_agg(format('SELECT %L || '':'' || md5(coalesce(string_agg(t::text, ''|'' "
        "ORDER BY t::text), '''')) AS x FROM %I AS t', tablename, tablename), ' UNION ALL ') "
        "|| ') AS tables' FROM pg_tables WHERE schemaname = current_schema()");
    return Text(query);
  }

  std::vector<v1::HistoryEntry> History(v1::OwnerType type, int64_t id) {
    auto stub = api_->Stub<v1::HistoryService>();
    v1::ListHistoryRequest request;
    request.mutable_entity()->set_type(type);
    request.mutable_entity()->set_id(id);
    request.set_page_size(1000);
    v1::ListHistoryResponse response;
    auto context = testing::CallContext(kKey, 30s);
    grpc::Status status = stub->ListHistory(context.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.entries().begin(), response.entries().end()};
  }

  static int CountOf(const std::vector<v1::HistoryEntry>& entries, const std::string& kind,
                     v1::OwnerType related_type = v1::OWNER_TYPE_UNSPECIFIED,
                     int64_t related_id = 0) {
    int count = 0;
    for (const v1::HistoryEntry& entry : entries) {
      if (entry.kind() == kind &&
          (related_type == v1::OWNER_TYPE_UNSPECIFIED ||
           (entry.related().type() == related_type && entry.related().id() == related_id))) {
        ++count;
      }
    }
    return count;
  }

  std::unique_ptr<testing::CrmApi> api_;
  int64_t user_ = 0;
  int serial_ = 0;
};

// One write's request, made ready (what it acts on created first), and whether it writes
// history (the lead, contact, company and deal services do; configuration and users do not).
struct WriteCase {
  std::string request;
  bool writes_history = true;
};

// Protects: the acting user is resolved and checked once for every write, not method by method.
// For each write method of every service (walked over the descriptors: a new method without a
// case here fails the test), x-leadflow-user-id naming no user → FAILED_PRECONDITION and not one
// row of any table changes; naming an active user → the call succeeds and every history entry
// and stage history row it wrote names that user (and the entity services wrote some).
TEST_F(HistoryWritesTest, EveryWriteChecksTheActingUserAndRecordsIt) {
  std::map<std::string, std::function<WriteCase()>> cases = {
      {"ActivityService.CreateActivity",
       [&] {
         return WriteCase{
             absl::StrCat("activity { type: ACTIVITY_TYPE_MEETING owner_type: "
                          "OWNER_TYPE_CONTACT owner_id: ",
                          NewContact(), " subject: 'Visit' deadline { seconds: 4102444800 } }"),
             false};
       }},
      {"ActivityService.CompleteActivity",
       [&] {
         return WriteCase{absl::StrCat("id: ", NewActivity(NewContact())), false};
       }},
      {"ActivityService.UpdateActivity",
       [&] {
         return WriteCase{absl::StrCat("activity { id: ", NewActivity(NewContact()),
                                       " subject: 'Call back at noon' } update_mask { paths: "
                                       "'subject' }"),
                          false};
       }},
      {"ActivityService.DeleteActivity",
       [&] {
         return WriteCase{absl::StrCat("id: ", NewActivity(NewContact())), false};
       }},
      {"CompanyService.CreateCompany",
       [&] { return WriteCase{absl::StrCat("company { name: 'New Co ", ++serial_, "' }")}; }},
      {"CompanyService.UpdateCompany",
       [&] {
         return WriteCase{absl::StrCat("company { id: ", NewCompany(),
                                       " industry: 'Retail' } update_mask { paths: 'industry' }")};
       }},
      {"CompanyService.DeleteCompany",
       [&] { return WriteCase{absl::StrCat("id: ", NewCompany())}; }},
      {"CompanyService.MergeCompanies",
       [&] {
         return WriteCase{absl::StrCat("kept_id: ", NewCompany(), " folded_ids: ", NewCompany())};
       }},
      {"CompanyService.LinkContact",
       [&] {
         return WriteCase{absl::StrCat("company_id: ", NewCompany(), " contact_id: ", NewContact(),
                                       " role: 'Buyer'")};
       }},
      {"CompanyService.UnlinkContact",
       [&] {
         const int64_t company = NewCompany(), contact = NewContact();
         Make("CompanyService.LinkContact",
              absl::StrCat("company_id: ", company, " contact_id: ", contact));
         return WriteCase{absl::StrCat("company_id: ", company, " contact_id: ", contact)};
       }},
      {"ContactService.CreateContact",
       [&] {
         return WriteCase{absl::StrCat("contact { full_name: 'Paul Durand", ++serial_, "' }")};
       }},
      {"ContactService.UpdateContact",
       [&] {
         return WriteCase{absl::StrCat("contact { id: ", NewContact(),
                                       " position: 'Manager' } update_mask { paths: 'position' }")};
       }},
      {"ContactService.DeleteContact",
       [&] { return WriteCase{absl::StrCat("id: ", NewContact())}; }},
      {"ContactService.MergeContacts",
       [&] {
         return WriteCase{absl::StrCat("kept_id: ", NewContact(), " folded_ids: ", NewContact())};
       }},
      {"ContactService.LinkCompany",
       [&] {
         return WriteCase{
             absl::StrCat("contact_id: ", NewContact(), " company_id: ", NewCompany())};
       }},
      {"ContactService.UnlinkCompany",
       [&] {
         const int64_t company = NewCompany(), contact = NewContact();
         Make("ContactService.LinkCompany",
              absl::StrCat("contact_id: ", contact, " company_id: ", company));
         return WriteCase{absl::StrCat("contact_id: ", contact, " company_id: ", company)};
       }},
      {"DealService.CreateDeal",
       [&] {
         return WriteCase{absl::StrCat("deal { title: 'Fit-out' } company_id: ", NewCompany(),
                                       " contact_ids: ", NewContact())};
       }},
      {"DealService.UpdateDeal",
       [&] {
         return WriteCase{
             absl::StrCat("deal { id: ", NewDeal(),
                          " title: 'Renamed' amount { amount_minor: 500000 currency: 'EUR' } "
                          "responsible_user_id: ",
                          user_,
                          " } update_mask { paths: 'title' paths: 'amount' paths: "
                          "'responsible_user_id' }")};
       }},
      {"DealService.DeleteDeal", [&] { return WriteCase{absl::StrCat("id: ", NewDeal())}; }},
      {"DealService.MoveDeal",
       [&] { return WriteCase{absl::StrCat("deal_id: ", NewDeal(), " stage_id: 'PREPARATION'")}; }},
      {"DealService.LinkContact",
       [&] {
         return WriteCase{absl::StrCat("deal_id: ", NewDeal(), " contact_id: ", NewContact())};
       }},
      {"DealService.UnlinkContact",
       [&] {
         const int64_t deal = NewDeal(), contact = NewContact();
         Make("DealService.LinkContact", absl::StrCat("deal_id: ", deal, " contact_id: ", contact));
         return WriteCase{absl::StrCat("deal_id: ", deal, " contact_id: ", contact)};
       }},
      {"DealService.SetCompany",
       [&] {
         return WriteCase{absl::StrCat("deal_id: ", NewDeal(), " company_id: ", NewCompany())};
       }},
      {"DealService.ClearCompany",
       [&] {
         const int64_t deal = NewDeal();
         Make("DealService.SetCompany",
              absl::StrCat("deal_id: ", deal, " company_id: ", NewCompany()));
         return WriteCase{absl::StrCat("deal_id: ", deal)};
       }},
      {"LeadService.CreateLead",
       [&] {
         return WriteCase{absl::StrCat("lead { title: 'Walk-in ", ++serial_,
                                       "' first_name: 'Jean' last_name: 'Dupont' }")};
       }},
      {"LeadService.UpdateLead",
       [&] {
         return WriteCase{absl::StrCat("lead { id: ", NewLead(),
                                       " title: 'Renamed' } update_mask { paths: 'title' }")};
       }},
      {"LeadService.ConvertLead",
       [&] {
         return WriteCase{absl::StrCat("lead_id: ", NewLead(),
                                       " produce: CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL "
                                       "request_id: 'convert-",
                                       ++serial_, "'")};
       }},
      {"LeadService.MergeLeads",
       [&] { return WriteCase{absl::StrCat("kept_id: ", NewLead(), " folded_ids: ", NewLead())}; }},
      {"PipelineService.CreatePipeline",
       [&] {
         return WriteCase{absl::StrCat("pipeline { name: 'Design ", ++serial_, "' }"), false};
       }},
      {"PipelineService.UpdatePipeline",
       [&] {
         return WriteCase{absl::StrCat("pipeline { id: ", NewPipeline(), " name: 'Renamed ",
                                       serial_, "' } update_mask { paths: 'name' }"),
                          false};
       }},
      {"PipelineService.DeletePipeline",
       [&] {
         return WriteCase{absl::StrCat("id: ", NewPipeline()), false};
       }},
      {"PipelineService.AddStage",
       [&] {
         return WriteCase{absl::StrCat("pipeline_id: ", NewPipeline(),
                                       " stage { id: 'SURVEY' name: 'Survey' semantics: "
                                       "SEMANTICS_PROCESS }"),
                          false};
       }},
      {"PipelineService.UpdateStage",
       [&] {
         return WriteCase{absl::StrCat("pipeline_id: ", NewPipeline(),
                                       " stage { id: 'NEW' name: 'Fresh' } update_mask { paths: "
                                       "'name' }"),
                          false};
       }},
      {"PipelineService.ReorderStages",
       [&] {
         return WriteCase{absl::StrCat("pipeline_id: ", NewPipeline(),
                                       " stage_ids: ['PREPARATION', 'NEW', 'PREPAYMENT_INVOICE', "
                                       "'EXECUTING', 'FINAL_INVOICE']"),
                          false};
       }},
      {"PipelineService.RemoveStage",
       [&] {
         return WriteCase{
             absl::StrCat("pipeline_id: ", NewPipeline(), " stage_id: 'PREPAYMENT_INVOICE'"),
             false};
       }},
      {"SettingsService.UpdateSettings",
       [&] {
         return WriteCase{absl::StrCat("settings { last_name_placeholder: 'Inconnu", ++serial_,
                                       "' } update_mask { paths: 'last_name_placeholder' }"),
                          false};
       }},
      {"StatusService.CreateStatus",
       [&] {
         return WriteCase{absl::StrCat("kind: STATUS_KIND_SOURCE status { id: 'EXPO_", ++serial_,
                                       "' name: 'Expo ", serial_, "' }"),
                          false};
       }},
      {"StatusService.UpdateStatus",
       [&] {
         return WriteCase{
             absl::StrCat("kind: STATUS_KIND_SOURCE status { id: '", NewSource(),
                          "' name: 'Trade fair ", serial_, "' } update_mask { paths: 'name' }"),
             false};
       }},
      {"StatusService.DeleteStatus",
       [&] {
         return WriteCase{absl::StrCat("kind: STATUS_KIND_SOURCE id: '", NewSource(), "'"), false};
       }},
      {"UserService.CreateUser",
       [&] {
         return WriteCase{
             absl::StrCat("user { name: 'Bob' email: 'bob", ++serial_, "@example.com' }"), false};
       }},
      {"UserService.UpdateUser",
       [&] {
         const int64_t bob =
             Int(Make("UserService.CreateUser",
                      absl::StrCat("user { name: 'Bob' email: 'bob", ++serial_, "@example.com' }"))
                     .get(),
                 "id");
         return WriteCase{
             absl::StrCat("user { id: ", bob, " name: 'Robert' } update_mask { paths: 'name' }"),
             false};
       }},
  };

  int writes = 0;
  std::set<std::string> walked;
  for (const MethodDescriptor* method : AllMethods()) {
    const std::string name = ShortName(*method);
    if (IsRead(*method)) {
      continue;
    }
    SCOPED_TRACE(name);
    ASSERT_FALSE(method->client_streaming() || method->server_streaming());
    auto found = cases.find(name);
    if (found == cases.end()) {
      ADD_FAILURE() << "write method " << name
                    << " has no case in this test: add one (and check that it records its user)";
      continue;
    }
    walked.insert(name);
    ++writes;
    const WriteCase write = found->second();

    const std::string before = Fingerprint();
    Reply refused = Call(*method, write.request, kUnknownUser);
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << refused.status.error_message();
    EXPECT_NE(refused.status.error_message().find("user 999 not found or not active"),
              std::string::npos)
        << refused.status.error_message();
    EXPECT_EQ(Fingerprint(), before) << "a refused call wrote something";

    const int64_t last_entry = Scalar("SELECT coalesce(max(id), 0) FROM history");
    const int64_t last_stage_row = Scalar("SELECT coalesce(max(id), 0) FROM deal_stage_history");
    Reply done = Call(*method, write.request, user_);
    if (!done.status.ok()) {
      ADD_FAILURE() << done.status.error_message();
      continue;
    }
    const int64_t written =
        Scalar(absl::StrCat("SELECT count(*) FROM history WHERE id > ", last_entry));
    EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM history WHERE id > ", last_entry,
                                  " AND user_id IS DISTINCT FROM ", user_)),
              0)
        << Text(absl::StrCat("SELECT string_agg(entity_type || ' ' || entity_id || ' ' || kind || "
                             "' user ' || coalesce(user_id::text, 'none'), '; ') FROM history "
                             "WHERE id > ",
                             last_entry));
    EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM deal_stage_history WHERE id > ",
                                  last_stage_row, " AND user_id IS DISTINCT FROM ", user_)),
              0);
    if (write.writes_history) {
      EXPECT_GT(written, 0) << "no history entry";
    }
  }
  // Every case was walked: a case left for a method that is gone, or renamed, is a stale test.
  for (const auto& [name, make] : cases) {
    EXPECT_EQ(walked.count(name), 1u) << name << " is not a write method of any service";
  }
  EXPECT_EQ(writes, static_cast<int>(cases.size()));
}

// Protects: the acting user of a write that is not an id, or names a deactivated user, is refused
// before anything is written.
TEST_F(HistoryWritesTest, MalformedOrInactiveActingUserIsRefused) {
  const MethodDescriptor* create =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          "leadflow.crm.v1.DealService.CreateDeal");
  ASSERT_NE(create, nullptr);
  const int64_t deals = Scalar("SELECT count(*) FROM deals");
  EXPECT_EQ(Call(*create, "deal { title: 'X' }", 0, "ann").status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  Scalar(absl::StrCat("UPDATE users SET active = false WHERE id = ", user_, " RETURNING id"));
  EXPECT_EQ(Call(*create, "deal { title: 'X' }", user_).status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Scalar("SELECT count(*) FROM deals"), deals);
}

// Protects (D4, D5, D2): refusals say what is wrong the same way everywhere. An inactive or
// unknown responsible is "responsible_user_id: user 999 not found or not active" in every method
// that takes one (one helper, CheckActiveUser); ListHistory's negative id "must be positive"
// (not "is required"); ConvertLead's request_id counts characters, as its proto comment and
// the column's CHECK do: 128 "é" (256 bytes) pass that check, 129 are refused.
TEST_F(HistoryWritesTest, RefusalsNameTheFieldAndTheRealLimit) {
  auto method = [](const std::string& name) {
    const MethodDescriptor* found =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName("leadflow.crm.v1." +
                                                                             name);
    EXPECT_NE(found, nullptr) << name;
    return found;
  };
  const int64_t deal = NewDeal();
  const std::string unknown = absl::StrCat(" responsible_user_id: ", kUnknownUser);
  for (const auto& [name, request] : std::vector<std::pair<std::string, std::string>>{
           {"LeadService.CreateLead", "lead { title: 'T' first_name: 'Ann'" + unknown + " }"},
           {"ActivityService.CreateActivity",
            absl::StrCat("activity { type: ACTIVITY_TYPE_TASK owner_type: OWNER_TYPE_DEAL ",
                         "owner_id: ", deal, " subject: 'Call'", unknown, " }")},
           {"DealService.CreateDeal", "deal { title: 'D'" + unknown + " }"},
           {"ContactService.CreateContact", "contact { full_name: 'Marie Curie'" + unknown + " }"},
           {"CompanyService.CreateCompany", "company { name: 'Acme'" + unknown + " }"}}) {
    const MethodDescriptor* found = method(name);
    ASSERT_NE(found, nullptr);
    Reply refused = Call(*found, request, 0);
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << name;
    EXPECT_EQ(testing::StatusMessage(refused.status),
              absl::StrCat("responsible_user_id: user ", kUnknownUser, " not found or not active"))
        << name;
  }

  const MethodDescriptor* history = method("HistoryService.ListHistory");
  ASSERT_NE(history, nullptr);
  Reply negative = Call(*history, "entity { type: OWNER_TYPE_DEAL id: -3 }", 0);
  EXPECT_EQ(negative.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(negative.status), "entity.id must be positive");
  Reply missing = Call(*history, "entity { type: OWNER_TYPE_DEAL }", 0);
  EXPECT_EQ(testing::StatusMessage(missing.status), "entity.id is required");

  const MethodDescriptor* convert = method("LeadService.ConvertLead");
  ASSERT_NE(convert, nullptr);
  const int64_t lead = NewLead();
  std::string accents;
  for (int i = 0; i < 128; ++i) accents += "é";
  const std::string request =
      absl::StrCat("lead_id: ", lead, " produce: CONVERSION_PRODUCE_CONTACT request_id: '");
  Reply at_limit = Call(*convert, request + accents + "'", 0);
  EXPECT_TRUE(at_limit.status.ok()) << at_limit.status.error_message();
  Reply over = Call(*convert, request + accents + "é'", 0);
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(over.status), "request_id: at most 128 characters");
}

// Protects: a user deactivated while a write acting for them is in flight (checked, not yet
// written) does not let the write through afterwards: the deactivation waits for the write, so
// the write lands while the user is still active; a write starting after it is refused.
TEST_F(HistoryWritesTest, DeactivationWaitsForTheActingUsersWritesInFlight) {
  const MethodDescriptor* update =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          "leadflow.crm.v1.ContactService.UpdateContact");
  ASSERT_NE(update, nullptr);
  const int64_t contact = NewContact();
  // The contact's row held by a transaction of the test: the write passes its acting-user check,
  // then waits for the row.
  pqxx::connection blocker(api_->database_url());
  pqxx::work held(blocker);
  held.exec(absl::StrCat("SELECT 1 FROM contacts WHERE id = ", contact, " FOR UPDATE"));
  std::thread write([&] {
    const Reply reply = Call(*update,
                             absl::StrCat("contact { id: ", contact,
                                          " comments: 'called back' } update_mask { paths: "
                                          "'comments' }"),
                             user_);
    EXPECT_TRUE(reply.status.ok()) << reply.status.error_message();
  });
  auto waiting = [&](const std::string& locktype) {
    return Scalar(absl::StrCat("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = '",
                               locktype, "'"));
  };
  ASSERT_TRUE(
      testing::WaitFor([&] { return waiting("transactionid") + waiting("tuple") > 0; }, 20s));
  std::thread deactivate([&] {
    Make("UserService.UpdateUser",
         absl::StrCat("user { id: ", user_, " active: false } update_mask { paths: 'active' }"));
  });
  // The deactivation either waits for the write in flight or (the guarantee broken) commits now.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return waiting("advisory") > 0 ||
               Scalar(absl::StrCat("SELECT count(*) FROM users WHERE id = ", user_,
                                   " AND NOT active")) > 0;
      },
      20s));
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM users WHERE id = ", user_, " AND active")),
            1);
  held.commit();
  write.join();
  deactivate.join();
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM users WHERE id = ", user_, " AND active")),
            0);
  EXPECT_EQ(Call(*update,
                 absl::StrCat("contact { id: ", contact,
                              " comments: 'too late' } update_mask { paths: 'comments' }"),
                 user_)
                .status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Text(absl::StrCat("SELECT comments FROM contacts WHERE id = ", contact)),
            "called back");
}

// Protects: a deal's amount change reads in major units with the currency's minor-unit digits
// ("0.00 EUR" → "5000.00 EUR" for 500000 minor units; JPY has none), by the acting user.
TEST_F(HistoryWritesTest, DealAmountChangeReadsInMajorUnits) {
  const MethodDescriptor* update =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          "leadflow.crm.v1.DealService.UpdateDeal");
  const int64_t deal = NewDeal();
  ASSERT_TRUE(Call(*update,
                   absl::StrCat("deal { id: ", deal,
                                " amount { amount_minor: 500000 currency: 'EUR' } } "
                                "update_mask { paths: 'amount' }"),
                   user_)
                  .status.ok());
  ASSERT_TRUE(Call(*update,
                   absl::StrCat("deal { id: ", deal,
                                " amount { amount_minor: 500000 currency: 'JPY' } } "
                                "update_mask { paths: 'amount' }"),
                   user_)
                  .status.ok());
  std::vector<std::pair<std::string, std::string>> changes;
  for (const v1::HistoryEntry& entry : History(v1::OWNER_TYPE_DEAL, deal)) {
    if (entry.kind() == "FIELD_CHANGED" && entry.field() == "amount") {
      changes.emplace_back(entry.old_value(), entry.new_value());
      EXPECT_EQ(entry.user_id(), user_);
    }
  }
  ASSERT_EQ(changes.size(), 2u);  // newest first
  EXPECT_EQ(changes[1], std::make_pair(std::string("0.00 EUR"), std::string("5000.00 EUR")));
  EXPECT_EQ(changes[0], std::make_pair(std::string("5000.00 EUR"), std::string("500000 JPY")));
}

// Protects: a deal converted from a lead is created once on its timeline — one CREATED entry,
// naming the stage and the lead it came from — by the user who converted it.
TEST_F(HistoryWritesTest, ConvertedDealHasOneCreatedEntryNamingTheLead) {
  const MethodDescriptor* convert =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          "leadflow.crm.v1.LeadService.ConvertLead");
  const int64_t lead = NewLead();
  Reply converted = Call(
      *convert,
      absl::StrCat("lead_id: ", lead, " produce: CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL"), user_);
  ASSERT_TRUE(converted.status.ok()) << converted.status.error_message();
  const int64_t deal = Int(converted.message.get(), "deal_id");
  ASSERT_GT(deal, 0);
  const std::vector<v1::HistoryEntry> history = History(v1::OWNER_TYPE_DEAL, deal);
  ASSERT_EQ(CountOf(history, "CREATED"), 1);
  EXPECT_EQ(CountOf(history, "CREATED", v1::OWNER_TYPE_LEAD, lead), 1);
  for (const v1::HistoryEntry& entry : history) {
    if (entry.kind() == "CREATED") {
      EXPECT_EQ(entry.field(), "stage");
      EXPECT_EQ(entry.user_id(), user_);
    }
  }
}

// Protects: a deal created with its company and contacts shows those links on its timeline and on
// theirs, as SetCompany and LinkContact write them.
TEST_F(HistoryWritesTest, DealCreatedWithLinksShowsThemOnEveryTimeline) {
  const int64_t company = NewCompany(), first = NewContact(), second = NewContact();
  std::unique_ptr<Message> deal_message =
      Make("DealService.CreateDeal",
           absl::StrCat("deal { title: 'Office' } company_id: ", company, " contact_ids: [", first,
                        ", ", second, ", ", first, "]"));
  const int64_t deal = Int(deal_message.get(), "id");
  ASSERT_GT(deal, 0);
  const std::vector<v1::HistoryEntry> history = History(v1::OWNER_TYPE_DEAL, deal);
  EXPECT_EQ(CountOf(history, "LINKED", v1::OWNER_TYPE_COMPANY, company), 1);
  EXPECT_EQ(CountOf(history, "LINKED", v1::OWNER_TYPE_CONTACT, first), 1);
  EXPECT_EQ(CountOf(history, "LINKED", v1::OWNER_TYPE_CONTACT, second), 1);
  EXPECT_EQ(CountOf(History(v1::OWNER_TYPE_COMPANY, company), "LINKED", v1::OWNER_TYPE_DEAL, deal),
            1);
  EXPECT_EQ(CountOf(History(v1::OWNER_TYPE_CONTACT, first), "LINKED", v1::OWNER_TYPE_DEAL, deal),
            1);
  EXPECT_EQ(CountOf(History(v1::OWNER_TYPE_CONTACT, second), "LINKED", v1::OWNER_TYPE_DEAL, deal),
            1);
}

// Protects: the kept company's timeline shows what a merge moved to it — one LINKED entry per
// contact and per deal it gained (none for a contact it held already) — and each moved contact's
// timeline shows the move (UNLINKED the folded company, LINKED the kept one).
TEST_F(HistoryWritesTest, MergeCompaniesShowsMovedLinksOnTheKeptTimeline) {
  const int64_t kept = NewCompany(), folded = NewCompany();
  const int64_t shared = NewContact(), moved_one = NewContact(), moved_two = NewContact();
  for (auto [company, contact] : std::vector<std::pair<int64_t, int64_t>>{
           {kept, shared}, {folded, shared}, {folded, moved_one}, {folded, moved_two}}) {
    Make("CompanyService.LinkContact",
         absl::StrCat("company_id: ", company, " contact_id: ", contact, " role: 'Buyer'"));
  }
  const int64_t deal = NewDeal();
  Make("DealService.SetCompany", absl::StrCat("deal_id: ", deal, " company_id: ", folded));
  const int64_t before = Scalar("SELECT coalesce(max(id), 0) FROM history");
  const MethodDescriptor* merge =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          "leadflow.crm.v1.CompanyService.MergeCompanies");
  ASSERT_TRUE(
      Call(*merge, absl::StrCat("kept_id: ", kept, " folded_ids: ", folded), user_).status.ok());

  const std::vector<v1::HistoryEntry> timeline = History(v1::OWNER_TYPE_COMPANY, kept);
  EXPECT_EQ(CountOf(timeline, "LINKED", v1::OWNER_TYPE_CONTACT, moved_one), 1);
  EXPECT_EQ(CountOf(timeline, "LINKED", v1::OWNER_TYPE_CONTACT, moved_two), 1);
  EXPECT_EQ(CountOf(timeline, "LINKED", v1::OWNER_TYPE_CONTACT, shared), 1);  // its own link only
  EXPECT_EQ(CountOf(timeline, "LINKED", v1::OWNER_TYPE_DEAL, deal), 1);
  for (int64_t contact : {moved_one, moved_two}) {
    const std::vector<v1::HistoryEntry> theirs = History(v1::OWNER_TYPE_CONTACT, contact);
    EXPECT_EQ(CountOf(theirs, "UNLINKED", v1::OWNER_TYPE_COMPANY, folded), 1);
    EXPECT_EQ(CountOf(theirs, "LINKED", v1::OWNER_TYPE_COMPANY, kept), 1);
  }
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM history WHERE id > ", before,
                                " AND user_id IS DISTINCT FROM ", user_)),
            0);
}

// Protects: MergeContacts likewise: the kept contact's timeline shows the companies and deals the
// folded contact brought.
TEST_F(HistoryWritesTest, MergeContactsShowsMovedLinksOnTheKeptTimeline) {
  const int64_t kept = NewContact(), folded = NewContact();
  const int64_t company = NewCompany(), deal = NewDeal();
  Make("ContactService.LinkCompany",
       absl::StrCat("contact_id: ", folded, " company_id: ", company, " role: 'CFO'"));
  Make("DealService.LinkContact", absl::StrCat("deal_id: ", deal, " contact_id: ", folded));
  Make("ContactService.MergeContacts", absl::StrCat("kept_id: ", kept, " folded_ids: ", folded));
  const std::vector<v1::HistoryEntry> timeline = History(v1::OWNER_TYPE_CONTACT, kept);
  EXPECT_EQ(CountOf(timeline, "LINKED", v1::OWNER_TYPE_COMPANY, company), 1);
  EXPECT_EQ(CountOf(timeline, "LINKED", v1::OWNER_TYPE_DEAL, deal), 1);
  for (const v1::HistoryEntry& entry : timeline) {
    if (entry.kind() == "LINKED" && entry.related().type() == v1::OWNER_TYPE_COMPANY) {
      EXPECT_EQ(entry.new_value(), "CFO");  // the role it moved with
    }
  }
}

// Protects: MergeLeads shows what it moved as MergeContacts does: the returning leads that named
// the folded lead as their previous one now name the kept lead, which gets LINKED each; each of
// them gets UNLINKED the folded lead and LINKED the kept one. A merge under the bound is not
// counted as summarised.
TEST_F(HistoryWritesTest, MergeLeadsShowsMovedLinksOnTheKeptTimeline) {
  const int64_t kept = NewLead(), folded = NewLead(), returning = NewLead();
  Scalar(absl::StrCat("UPDATE leads SET previous_lead_id = ", folded, " WHERE id = ", returning,
                      " RETURNING id"));
  Make("LeadService.MergeLeads", absl::StrCat("kept_id: ", kept, " folded_ids: ", folded));
  EXPECT_EQ(Scalar(absl::StrCat("SELECT previous_lead_id FROM leads WHERE id = ", returning)),
            kept);
  EXPECT_EQ(CountOf(History(v1::OWNER_TYPE_LEAD, kept), "LINKED", v1::OWNER_TYPE_LEAD, returning),
            1);
  const std::vector<v1::HistoryEntry> other = History(v1::OWNER_TYPE_LEAD, returning);
  EXPECT_EQ(CountOf(other, "UNLINKED", v1::OWNER_TYPE_LEAD, folded), 1);
  EXPECT_EQ(CountOf(other, "LINKED", v1::OWNER_TYPE_LEAD, kept), 1);
  EXPECT_EQ(
      testing::MetricValue(api_->Metrics(), "crm_merge_links_summarised_total{kind=\"LEAD\"}"), 0);
}

// Protects: the entries a merge writes for moved links are bounded: past the first 1000 links,
// one FIELD_CHANGED "links" entry on the kept record counts the rest.
TEST_F(HistoryWritesTest, MovedLinkEntriesAreBounded) {
  const int64_t kept = NewCompany(), folded = NewCompany();
  Scalar(
      absl::StrCat("WITH made AS (INSERT INTO contacts (first_name, last_name, search_first_last, "
                   "search_last_first) SELECT 'C', 'N' || n, 'c n' || n, 'n' || n || ' c' "
                   "FROM generate_series(1, 1010) AS n RETURNING id), "
                   "linked AS (INSERT INTO contact_companies (contact_id, company_id) SELECT id, ",
                   folded, " FROM made RETURNING 1) SELECT count(*) FROM linked"));
  const std::string summarised = "crm_merge_links_summarised_total{kind=\"COMPANY\"}";
  EXPECT_EQ(testing::MetricValue(api_->Metrics(), summarised), 0);
  Make("CompanyService.MergeCompanies", absl::StrCat("kept_id: ", kept, " folded_ids: ", folded));
  // The merge that hit the bound is counted, under its kind only.
  const std::string metrics = api_->Metrics();
  EXPECT_EQ(testing::MetricValue(metrics, summarised), 1) << metrics;
  EXPECT_EQ(testing::MetricValue(metrics, "crm_merge_links_summarised_total{kind=\"CONTACT\"}"), 0);
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM history WHERE entity_type = 'COMPANY' AND "
                                "entity_id = ",
                                kept, " AND kind = 'LINKED' AND related_type = 'CONTACT'")),
            1000);
  EXPECT_EQ(Text(absl::StrCat("SELECT new_value FROM history WHERE entity_type = 'COMPANY' AND "
                              "entity_id = ",
                              kept, " AND kind = 'FIELD_CHANGED' AND field = 'links'")),
            "10 more links moved by this merge, not listed one by one");
  EXPECT_EQ(
      Scalar(absl::StrCat("SELECT count(*) FROM contact_companies WHERE company_id = ", kept)),
      1010);
}

}  // namespace
}  // namespace leadflow::crm
