// SearchService: a person by how to reach them, or by the start of a name.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/people_repository.h"
#include "identity/identity.h"

namespace leadflow::crm {
namespace {

constexpr int kMaxCommunicationMatches = 1000;

// FindByName pages run over leads, then contacts, then companies: the token holds the kind's
// rank above the id.
constexpr int64_t kRankShift = int64_t{1} << 52;

void ToProto(const SearchHit& hit, v1::SearchMatch* out) {
  out->mutable_entity()->set_type(OwnerTypeOf(hit.type));
  out->mutable_entity()->set_id(hit.id);
  out->set_display_name(hit.display_name);
  out->set_company_name(hit.company_name);
  out->set_responsible_user_id(hit.responsible_user_id);
  out->set_closed(hit.closed);
}

}  // namespace

grpc::ServerUnaryReactor* SearchApi::FindByCommunication(
    grpc::CallbackServerContext* context, const v1::FindByCommunicationRequest* request,
    v1::FindByCommunicationResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=, this](pqxx::connection& connection) {
                   IdentityKey key;
                   absl::StatusOr<std::string> normalized;
                   switch (request->communication_case()) {
                     case v1::FindByCommunicationRequest::kPhone:
                       key.kind = "PHONE";
                       normalized = identity::NormalizePhone(request->phone(), default_region_);
                       break;
                     case v1::FindByCommunicationRequest::kEmail:
                       key.kind = "EMAIL";
                       normalized = NormalizeEmailAddress(request->email());
                       break;
                     case v1::FindByCommunicationRequest::kMessenger:
                       key.kind = "MESSENGER";
                       normalized = NormalizeMessenger(request->messenger());
                       break;
                     default:
                       return absl::InvalidArgumentError("give one of phone, email or messenger");
                   }
                   if (!normalized.ok()) {
                     const std::string& raw = key.kind == "PHONE"   ? request->phone()
                                              : key.kind == "EMAIL" ? request->email()
                                                                    : request->messenger();
                     return absl::InvalidArgumentError(absl::StrCat(absl::AsciiStrToLower(key.kind),
                                                                    " ", domain::Quoted(raw), ": ",
                                                                    normalized.status().message()));
                   }
                   key.value = *normalized;
                   response->set_normalized(key.value);
                   pqxx::read_transaction work(connection);
                   std::vector<SearchHit> hits =
                       SearchRepository(work).ByIdentity(key, kMaxCommunicationMatches + 1);
                   for (size_t i = 0; i < hits.size() && i < kMaxCommunicationMatches; ++i) {
                     ToProto(hits[i], response->add_matches());
                   }
                   response->set_truncated(hits.size() > kMaxCommunicationMatches);
                   return absl::OkStatus();
                 });
}

grpc::ServerUnaryReactor* SearchApi::FindByName(grpc::CallbackServerContext* context,
                                                const v1::FindByNameRequest* request,
                                                v1::FindByNameResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        if (request->prefix().size() > 800) {
          return absl::InvalidArgumentError("prefix must hold 1 to 200 characters");
        }
        const std::vector<std::string> forms = domain::SearchQueryForms(request->prefix());
        if (forms.empty() || forms.front().size() > 200 * 4) {
          return absl::InvalidArgumentError("prefix must hold 1 to 200 characters");
        }
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        std::set<std::string> wanted;
        for (int type : request->types()) {
          std::string name = TypeName(static_cast<v1::OwnerType>(type));
          if (name != "LEAD" && name != "CONTACT" && name != "COMPANY") {
            return absl::InvalidArgumentError("types may hold LEAD, CONTACT and COMPANY only");
          }
          wanted.insert(name);
        }
        if (wanted.empty()) {
          wanted = {"LEAD", "CONTACT", "COMPANY"};
        }
        pqxx::read_transaction work(connection);
        SearchRepository search(work);
        const int64_t start_rank = page->after_id / kRankShift;
        const int64_t start_id = page->after_id % kRankShift;
        int remaining = page->size;
        const std::string kinds[] = {"LEAD", "CONTACT", "COMPANY"};
        for (int64_t rank = start_rank; rank < 3 && remaining > 0; ++rank) {
          if (wanted.count(kinds[rank]) == 0) {
            continue;
          }
          std::vector<SearchHit> hits =
              search.ByName(kinds[rank], forms, rank == start_rank ? start_id : 0, remaining + 1);
          for (size_t i = 0; i < hits.size() && remaining > 0; ++i, --remaining) {
            ToProto(hits[i], response->add_matches());
            if (remaining == 1) {
              // The page is full: a next page exists if this kind had more, or a later kind
              // is wanted (it may be empty; the next page then says so).
              bool more = hits.size() > i + 1;
              for (int64_t later = rank + 1; later < 3 && !more; ++later) {
                more = wanted.count(kinds[later]) != 0;
              }
              if (more) {
                *response->mutable_next_page_token() = page->NextToken(
                    hits.size() > i + 1 ? rank * kRankShift + hits[i].id : (rank + 1) * kRankShift);
              }
            }
          }
        }
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
