// CallService: the calls nobody could be matched to; and how CALL activities and the call
// settings look on the wire.
#include <optional>
#include <regex>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "crm-core/api/call_common.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/domain/common/errors.h"

namespace leadflow::crm {
namespace {

constexpr size_t kMaxLineQueues = 200;

v1::CallDirection DirectionToProto(domain::CallDirection direction) {
  return direction == domain::CallDirection::kOutbound ? v1::CALL_DIRECTION_OUTBOUND
                                                       : v1::CALL_DIRECTION_INBOUND;
}

v1::CallOutcome OutcomeToProto(domain::CallOutcome outcome) {
  v1::CallOutcome out = v1::CALL_OUTCOME_UNSPECIFIED;
  v1::CallOutcome_Parse("CALL_OUTCOME_" + std::string(domain::ToString(outcome)), &out);
  return out;
}

v1::UnidentifiedReason ReasonToProto(domain::UnidentifiedReason reason) {
  switch (reason) {
    case domain::UnidentifiedReason::kWithheld:
      return v1::UNIDENTIFIED_REASON_WITHHELD;
    case domain::UnidentifiedReason::kNotAPhoneNumber:
      return v1::UNIDENTIFIED_REASON_NOT_A_PHONE_NUMBER;
    case domain::UnidentifiedReason::kOutboundUnknownNumber:
      return v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER;
  }
  return v1::UNIDENTIFIED_REASON_UNSPECIFIED;
}

// The request's filter: nullopt for UNSPECIFIED (every reason); a value this server does not
// know is INVALID_ARGUMENT.
absl::StatusOr<std::optional<domain::UnidentifiedReason>> ReasonFilter(
    v1::UnidentifiedReason reason) {
  switch (reason) {
    case v1::UNIDENTIFIED_REASON_UNSPECIFIED:
      return std::nullopt;
    case v1::UNIDENTIFIED_REASON_WITHHELD:
      return domain::UnidentifiedReason::kWithheld;
    case v1::UNIDENTIFIED_REASON_NOT_A_PHONE_NUMBER:
      return domain::UnidentifiedReason::kNotAPhoneNumber;
    case v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER:
      return domain::UnidentifiedReason::kOutboundUnknownNumber;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("reason: unknown value ", reason));
}

// The call's own times (seconds since the epoch, 0: unknown) on CallDetails or UnidentifiedCall.
template <typename Message>
void SetCallTimes(const domain::CallFacts& call, Message* out) {
  if (call.started_unix != 0) out->mutable_start_time()->set_seconds(call.started_unix);
  if (call.answered_unix != 0) out->mutable_answer_time()->set_seconds(call.answered_unix);
  if (call.ended_unix != 0) out->mutable_end_time()->set_seconds(call.ended_unix);
}

void ToProto(const UnidentifiedCall& entry, v1::UnidentifiedCall* out) {
  out->set_id(entry.id);
  out->set_call_id(entry.call.call_id);
  out->set_direction(DirectionToProto(entry.call.direction));
  out->set_outcome(OutcomeToProto(entry.call.outcome));
  out->set_from_number(entry.call.from_number);
  out->set_to_number(entry.call.to_number);
  out->set_line(entry.call.line);
  out->set_duration_seconds(static_cast<int32_t>(entry.call.duration_seconds));
  out->set_operator_name(entry.call.operator_name);
  out->set_recording_url(entry.call.recording_url);
  for (const std::string& url : entry.call.recording_urls) {
    out->add_recording_urls(url);
  }
  out->set_responsible_user_id(entry.responsible_user_id);
  out->set_origin_event_id(entry.origin_event_id);
  *out->mutable_create_time() = FromMicros(entry.create_micros);
  out->set_reason(ReasonToProto(entry.reason));
  SetCallTimes(entry.call, out);
}

}  // namespace

void CallDetailsToProto(const Activity::Call& call, v1::CallDetails* out) {
  out->set_call_id(call.facts.call_id);
  out->set_direction(DirectionToProto(call.facts.direction));
  out->set_outcome(OutcomeToProto(call.facts.outcome));
  out->set_number(call.facts.Counterpart());
  out->set_line(call.facts.line);
  out->set_duration_seconds(static_cast<int32_t>(call.facts.duration_seconds));
  out->set_operator_name(call.facts.operator_name);
  out->set_recording_url(call.facts.recording_url);
  for (const std::string& url : call.facts.recording_urls) {
    out->add_recording_urls(url);
  }
  out->set_call_back(call.call_back);
  out->set_missed_calls(static_cast<int32_t>(call.missed_calls));
  if (call.last_attempt_micros != 0) {
    *out->mutable_last_attempt_time() = FromMicros(call.last_attempt_micros);
  }
  out->set_completed_by_event_id(call.completed_by_event_id);
  SetCallTimes(call.facts, out);
}

int64_t RecordingsDroppedByFold(pqxx::transaction_base& work, const std::string& type,
                                int64_t kept_id, const std::vector<OpenCallBack>& before) {
  if (before.empty()) {
    return 0;
  }
  const std::vector<OpenCallBack> kept = CallRepository(work).OpenCallBacks(type, {kept_id});
  return kept.empty() ? 0 : RecordingsLeftOutByFold(before, kept.front());
}

std::vector<HistoryRecord> FoldedCallBacksHistory(pqxx::transaction_base& work,
                                                  const std::string& type, int64_t kept_id,
                                                  const std::vector<OpenCallBack>& before,
                                                  int64_t user_id, int64_t* recordings_dropped) {
  std::vector<HistoryRecord> history;
  if (recordings_dropped != nullptr) {
    *recordings_dropped = 0;
  }
  if (before.empty()) {
    return history;
  }
  const std::vector<OpenCallBack> kept = CallRepository(work).OpenCallBacks(type, {kept_id});
  if (kept.empty()) {
    return history;
  }
  const OpenCallBack& now = kept.front();
  if (recordings_dropped != nullptr) {
    *recordings_dropped = RecordingsLeftOutByFold(before, now);
  }
  for (const OpenCallBack& folded : before) {
    if (folded.activity_id == now.activity_id) {
      continue;  // the kept record had none: this one moved over as it was
    }
    history.push_back(
        {.entity_type = type,
         .entity_id = kept_id,
         .kind = "MERGED",
         .field = "call_back",
         .old_value = absl::StrCat("activity ", folded.activity_id, ": ", folded.missed_calls,
                                   " missed calls, ", folded.recordings, " recordings"),
         .new_value = absl::StrCat("activity ", now.activity_id, ": ", now.missed_calls,
                                   " missed calls, ", now.recordings, " recordings"),
         .related_type = type,
         .related_id = folded.owner_id,
         .user_id = user_id});
  }
  return history;
}

void CallSettingsToProto(const StoredCallSettings& settings, v1::CallSettings* out) {
  out->set_call_back_sla_minutes(static_cast<int32_t>(settings.call_back_sla_minutes));
  out->set_outbound_creates_lead(settings.outbound_creates_lead);
  for (const auto& [line, queue] : settings.line_queues) {
    (*out->mutable_line_queues())[line] = queue;
  }
}

absl::Status CallSettingsFromProto(const v1::CallSettings& given, StoredCallSettings& settings) {
  static const std::regex kQueueKey(R"([A-Za-z0-9_:.-]{1,100})");
  if (given.line_queues_size() > static_cast<int>(kMaxLineQueues)) {
    return absl::InvalidArgumentError(
        absl::StrCat("calls.line_queues: at most ", kMaxLineQueues, " lines"));
  }
  std::map<std::string, std::string> lines(given.line_queues().begin(), given.line_queues().end());
  if (absl::Status valid = domain::ValidateCallSettings(given.call_back_sla_minutes(), lines);
      !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("calls.", valid.message()));
  }
  for (const auto& [line, queue] : lines) {
    if (!std::regex_match(queue, kQueueKey)) {
      return absl::InvalidArgumentError(absl::StrCat("calls.line_queues: queue key ",
                                                     domain::Quoted(queue.substr(0, 100)),
                                                     " must be 1–100 of A-Z a-z 0-9 _ : . -"));
    }
  }
  settings.call_back_sla_minutes = given.call_back_sla_minutes();
  settings.outbound_creates_lead = given.outbound_creates_lead();
  settings.line_queues = std::move(lines);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* CallApi::ListUnidentifiedCalls(
    grpc::CallbackServerContext* context, const v1::ListUnidentifiedCallsRequest* request,
    v1::ListUnidentifiedCallsResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kRead, response, [=, this](pqxx::connection& connection) {
        auto page = ParsePage(backend_.page_token_key, *request);
        if (!page.ok()) {
          return page.status();
        }
        auto reason = ReasonFilter(request->reason());
        if (!reason.ok()) {
          return reason.status();
        }
        pqxx::read_transaction work(connection);
        FillPage(
            CallRepository(work).ListUnidentified(page->after_id, page->limit(), *reason), *page,
            [&](const UnidentifiedCall& entry) { ToProto(entry, response->add_calls()); },
            response->mutable_next_page_token());
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
