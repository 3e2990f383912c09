// ActivityService.ListEmailMessages: the received emails kept with an activity or a record
// (store/email_repository.h). Read role; paged with ParsePage like every List method.
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/filters.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/people_common.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/store/email_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {
namespace {

void ToProto(const EmailMessageRecord& message, v1::EmailMessage* out) {
  out->set_id(message.id);
  out->set_message_id(message.message_id);
  out->set_thread_key(message.thread_key);
  out->set_owner_type(OwnerTypeOf(std::string(domain::ToString(message.owner.kind))));
  out->set_owner_id(message.owner.id);
  out->set_activity_id(message.activity_id);
  out->set_mailbox(message.mailbox);
  out->set_from_address(message.from_address);
  out->set_from_name(message.from_name);
  out->set_reply_to_address(message.reply_to_address);
  for (const std::string& address : message.to_addresses) out->add_to_addresses(address);
  for (const std::string& address : message.cc_addresses) out->add_cc_addresses(address);
  if (message.sent_micros != 0) {
    *out->mutable_send_time() = FromMicros(message.sent_micros);
  }
  out->set_subject(message.subject);
  out->set_text(message.body);
  out->set_in_reply_to(message.in_reply_to);
  for (const std::string& reference : message.references) out->add_references(reference);
  for (const EmailMessageRecord::Attachment& attachment : message.attachments) {
    v1::EmailMessage::Attachment* added = out->add_attachments();
    added->set_filename(attachment.filename);
    added->set_content_type(attachment.content_type);
    added->set_size_bytes(attachment.size_bytes);
    added->set_inline_part(attachment.inline_part);
  }
  *out->mutable_receive_time() = FromMicros(message.received_micros);
  out->set_origin_event_id(message.event_id);
  // Set either way (explicit presence): false tells the reader the text and lists were omitted
  // past a cap, which empty fields alone cannot.
  out->set_content_kept(message.content_kept);
  out->set_relay_address(message.relay_address);
  out->set_to_addresses_omitted(static_cast<uint32_t>(message.to_addresses_omitted));
  out->set_cc_addresses_omitted(static_cast<uint32_t>(message.cc_addresses_omitted));
  for (const std::string& name : message.truncated_headers) out->add_truncated_headers(name);
}

}  // namespace

grpc::ServerUnaryReactor* ActivityApi::ListEmailMessages(
    grpc::CallbackServerContext* context, const v1::ListEmailMessagesRequest* request,
    v1::ListEmailMessagesResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        const bool by_activity = request->activity_id() != 0;
        const bool by_owner =
            request->owner_type() != v1::OWNER_TYPE_UNSPECIFIED || request->owner_id() != 0;
        if (by_activity == by_owner) {
          return absl::InvalidArgumentError(
              "give either activity_id, or owner_type (LEAD, CONTACT, COMPANY or DEAL) and "
              "owner_id");
        }
        if (by_activity && request->activity_id() < 0) {
          return absl::InvalidArgumentError("activity_id must be positive");
        }
        domain::EntityRef owner;
        if (by_owner) {
          if (request->owner_type() == v1::OWNER_TYPE_UNSPECIFIED || request->owner_id() <= 0) {
            return absl::InvalidArgumentError(
                "owner_type (LEAD, CONTACT, COMPANY or DEAL) and a positive owner_id are needed");
          }
          switch (request->owner_type()) {
            case v1::OWNER_TYPE_CONTACT:
              owner.kind = domain::EntityKind::kContact;
              break;
            case v1::OWNER_TYPE_COMPANY:
              owner.kind = domain::EntityKind::kCompany;
              break;
            case v1::OWNER_TYPE_DEAL:
              owner.kind = domain::EntityKind::kDeal;
              break;
            case v1::OWNER_TYPE_LEAD:
              owner.kind = domain::EntityKind::kLead;
              break;
            default:
              return absl::InvalidArgumentError("owner_type is not LEAD, CONTACT, COMPANY or DEAL");
          }
          owner.id = request->owner_id();
        }
        pqxx::read_transaction work(connection);
        if (by_owner) {
          if (absl::Status known = CheckFilterRecord(work, "owner_id", owner.kind, owner.id);
              !known.ok()) {
            return known;
          }
        } else if (!ActivityRepository(work).Get(request->activity_id())) {
          return domain::NotFound("activity", request->activity_id());
        }
        FillPage(
            EmailRepository(work).List(by_activity ? request->activity_id() : 0, owner,
                                       page->after_id, page->limit()),
            *page,
            [&](const EmailMessageRecord& message) { ToProto(message, response->add_messages()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
