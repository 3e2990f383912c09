#include "crm-core/store/email_repository.h"

#include <nlohmann/json.hpp>

#include "pg/pg.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;
using domain::EntityRef;

EntityKind KindOf(const std::string& text) {
  if (text == "CONTACT") return EntityKind::kContact;
  if (text == "COMPANY") return EntityKind::kCompany;
  if (text == "DEAL") return EntityKind::kDeal;
  return EntityKind::kLead;  // the schema CHECKs the four names
}

std::vector<std::string> Strings(const std::string& json_text) {
  std::vector<std::string> out;
  auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (json.is_array()) {
    for (const auto& item : json) {
      if (item.is_string()) out.push_back(item.get<std::string>());
    }
  }
  return out;
}

// A row of email_list_messages (store/sql/_email_message_columns.sql).
EmailMessageRecord ReadMessage(const pqxx::row& row) {
  EmailMessageRecord message;
  message.id = row[0].as<int64_t>();
  message.message_id = row[1].as<std::string>();
  message.event_id = row[2].as<std::string>();
  message.thread_key = row[3].as<std::string>();
  message.owner = {KindOf(row[4].as<std::string>()), row[5].as<int64_t>()};
  message.activity_id = row[6].as<int64_t>();
  message.mailbox = row[7].as<std::string>();
  message.from_address = row[8].as<std::string>();
  message.from_name = row[9].as<std::string>();
  message.reply_to_address = row[10].as<std::string>();
  message.to_addresses = Strings(row[11].as<std::string>());
  message.cc_addresses = Strings(row[12].as<std::string>());
  message.sent_micros = row[13].as<int64_t>();
  message.subject = row[14].as<std::string>();
  message.body = row[15].as<std::string>();
  message.in_reply_to = row[16].as<std::string>();
  message.references = Strings(row[17].as<std::string>());
  auto attachments = nlohmann::json::parse(row[18].as<std::string>(), nullptr, false);
  if (attachments.is_array()) {
    for (const auto& item : attachments) {
      if (!item.is_object()) continue;
      message.attachments.push_back({item.value("filename", ""), item.value("content_type", ""),
                                     item.value("size_bytes", int64_t{0}),
                                     item.value("inline", false)});
    }
  }
  message.received_micros = row[19].as<int64_t>();
  message.content_kept = row[20].as<bool>();
  message.relay_address = row[21].as<std::string>();
  message.to_addresses_omitted = row[22].as<int64_t>();
  message.cc_addresses_omitted = row[23].as<int64_t>();
  message.truncated_headers = Strings(row[24].as<std::string>());
  return message;
}

}  // namespace

std::vector<domain::ThreadMessage> EmailRepository::FindThreadMessages(
    const std::vector<std::string>& message_ids) {
  std::vector<domain::ThreadMessage> found;
  if (message_ids.empty()) {
    return found;
  }
  for (const auto& row :
       work_.exec_prepared("email_find_thread_messages", pg::TextArray(message_ids))) {
    domain::ThreadMessage message{.message_id = row[0].as<std::string>(),
                                  .thread_key = row[1].as<std::string>(),
                                  .owner = {KindOf(row[2].as<std::string>()), row[3].as<int64_t>()},
                                  .owner_responsible = row[4].as<int64_t>()};
    if (int64_t open = row[5].as<int64_t>(); open > 0) {
      message.open_activity = open;
    }
    found.push_back(std::move(message));
  }
  return found;
}

std::map<std::string, std::string> EmailRepository::OpenReplyMessagesOfSenders(
    const std::vector<std::string>& senders) {
  std::map<std::string, std::string> found;
  if (senders.empty()) {
    return found;
  }
  for (const auto& row :
       work_.exec_prepared("email_open_replies_of_senders", pg::TextArray(senders))) {
    found.emplace(row[0].as<std::string>(), row[1].as<std::string>());
  }
  return found;
}

void EmailRepository::LockOwners(const std::vector<EntityRef>& owners) {
  if (owners.empty()) {
    return;
  }
  std::vector<std::string> types;
  std::vector<int64_t> ids;
  for (const EntityRef& owner : owners) {
    types.emplace_back(domain::ToString(owner.kind));
    ids.push_back(owner.id);
  }
  work_.exec_prepared("email_lock_owners", pg::TextArray(types), pg::IntArray(ids));
}

std::set<size_t> EmailRepository::SendersKnown(const std::vector<SenderInThread>& candidates,
                                               size_t max_thread_messages) {
  std::set<size_t> known;
  if (candidates.empty()) {
    return known;
  }
  std::vector<std::string> threads, types, senders, domains;
  std::vector<int64_t> ids;
  for (const SenderInThread& candidate : candidates) {
    threads.push_back(candidate.thread_key);
    types.emplace_back(domain::ToString(candidate.owner.kind));
    ids.push_back(candidate.owner.id);
    senders.push_back(pg::StripNul(candidate.sender));
    domains.push_back(pg::StripNul(candidate.domain));
  }
  for (const auto& row :
       work_.exec_prepared("email_senders_known", pg::TextArray(threads), pg::TextArray(types),
                           pg::IntArray(ids), pg::TextArray(senders),
                           static_cast<int64_t>(max_thread_messages), pg::TextArray(domains))) {
    known.insert(static_cast<size_t>(row[0].as<int64_t>() - 1));  // ordinality counts from 1
  }
  return known;
}

EmailRepository::KeptCounts EmailRepository::CountKept(const std::vector<std::string>& thread_keys,
                                                       const std::vector<EntityRef>& owners,
                                                       size_t max_per_thread,
                                                       size_t max_per_record) {
  KeptCounts counts;
  if (thread_keys.empty() && owners.empty()) {
    return counts;
  }
  std::vector<std::string> types;
  std::vector<int64_t> ids;
  for (const EntityRef& owner : owners) {
    types.emplace_back(domain::ToString(owner.kind));
    ids.push_back(owner.id);
  }
  for (const auto& row : work_.exec_prepared(
           "email_count_kept", pg::TextArray(thread_keys), static_cast<int64_t>(max_per_thread),
           pg::TextArray(types), pg::IntArray(ids), static_cast<int64_t>(max_per_record))) {
    const auto count = static_cast<size_t>(row[4].as<int64_t>());
    if (row[0].as<std::string>() == "THREAD") {
      counts.threads[row[1].as<std::string>()] = count;
    } else {
      counts.owners[{KindOf(row[2].as<std::string>()), row[3].as<int64_t>()}] = count;
    }
  }
  return counts;
}

std::map<std::string, std::string> EmailRepository::StoredMessageIds(
    const std::vector<std::string>& message_ids) {
  std::map<std::string, std::string> stored;
  if (message_ids.empty()) {
    return stored;
  }
  for (const auto& row :
       work_.exec_prepared("email_stored_message_ids", pg::TextArray(message_ids))) {
    stored.emplace(row[0].as<std::string>(), row[1].as<std::string>());
  }
  return stored;
}

std::map<std::string, EmailRoute> EmailRepository::ReadRoutes(
    const std::vector<std::string>& addresses) {
  std::map<std::string, EmailRoute> routes;
  if (addresses.empty()) {
    return routes;
  }
  for (const auto& row : work_.exec_prepared("email_read_routes", pg::TextArray(addresses))) {
    EmailRoute route{.address = row[0].as<std::string>(),
                     .pipeline_id = row[1].as<int64_t>(),
                     .first_stage_id = row[2].as<std::string>(),
                     .queue = row[3].as<std::string>()};
    routes[route.address] = route;
  }
  return routes;
}

std::map<std::string, std::pair<int64_t, EntityRef>> EmailRepository::ActivitiesOfEvents(
    const std::vector<std::string>& event_ids) {
  std::map<std::string, std::pair<int64_t, EntityRef>> activities;
  if (event_ids.empty()) {
    return activities;
  }
  for (const auto& row :
       work_.exec_prepared("email_activities_of_events", pg::TextArray(event_ids))) {
    activities[row[0].as<std::string>()] = {
        row[1].as<int64_t>(), EntityRef{KindOf(row[2].as<std::string>()), row[3].as<int64_t>()}};
  }
  return activities;
}

std::map<std::string, int64_t> EmailRepository::InsertReplyActivities(
    const std::vector<NewReplyActivity>& activities) {
  std::map<std::string, int64_t> ids;
  if (activities.empty()) {
    return ids;
  }
  std::vector<std::string> owners, subjects, descriptions, events;
  std::vector<int64_t> owner_ids, responsible, deadlines;
  for (const NewReplyActivity& activity : activities) {
    owners.emplace_back(domain::ToString(activity.owner.kind));
    owner_ids.push_back(activity.owner.id);
    subjects.push_back(pg::StripNul(activity.subject));
    descriptions.push_back(pg::StripNul(activity.description));
    responsible.push_back(activity.responsible_user_id);
    deadlines.push_back(activity.deadline_minutes);
    events.push_back(activity.event_id);
  }
  for (const auto& row : work_.exec_prepared(
           "email_insert_reply_activities", pg::TextArray(owners), pg::IntArray(owner_ids),
           pg::TextArray(subjects), pg::TextArray(descriptions), pg::IdArrayZeroNull(responsible),
           pg::IntArray(deadlines), pg::TextArray(events))) {
    ids[row[0].as<std::string>()] = row[1].as<int64_t>();
  }
  return ids;
}

void EmailRepository::InsertMessages(const std::vector<EmailMessageRecord>& messages) {
  if (messages.empty()) {
    return;
  }
  nlohmann::json rows = nlohmann::json::array();
  auto clean = [](const std::string& text) { return pg::StripNul(text); };
  auto cleaned = [&](const std::vector<std::string>& texts) {
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& text : texts) out.push_back(clean(text));
    return out;
  };
  for (const EmailMessageRecord& message : messages) {
    nlohmann::json attachments = nlohmann::json::array();
    for (const auto& attachment : message.attachments) {
      attachments.push_back({{"filename", clean(attachment.filename)},
                             {"content_type", clean(attachment.content_type)},
                             {"size_bytes", attachment.size_bytes},
                             {"inline", attachment.inline_part}});
    }
    rows.push_back({{"message_id", clean(message.message_id)},
                    {"event_id", clean(message.event_id)},
                    {"thread_key", clean(message.thread_key)},
                    {"owner_type", std::string(domain::ToString(message.owner.kind))},
                    {"owner_id", message.owner.id},
                    {"activity_id", message.activity_id},
                    {"mailbox", clean(message.mailbox)},
                    {"from_address", clean(message.from_address)},
                    {"from_name", clean(message.from_name)},
                    {"reply_to_address", clean(message.reply_to_address)},
                    {"to", cleaned(message.to_addresses)},
                    {"cc", cleaned(message.cc_addresses)},
                    {"sent_at_micros", message.sent_micros},
                    {"subject", clean(message.subject)},
                    {"body", clean(message.body)},
                    {"in_reply_to", clean(message.in_reply_to)},
                    {"refs", cleaned(message.references)},
                    {"attachments", attachments},
                    {"content_kept", message.content_kept},
                    {"relay_address", clean(message.relay_address)},
                    {"to_omitted", message.to_addresses_omitted},
                    {"cc_omitted", message.cc_addresses_omitted},
                    {"truncated_headers", cleaned(message.truncated_headers)}});
  }
  // The texts were cut on UTF-8 boundaries; replace anything else rather than refuse the batch.
  work_.exec_prepared("email_insert_messages",
                      rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::vector<EmailMessageRecord> EmailRepository::List(int64_t activity_id, EntityRef owner,
                                                      int64_t after_id, int limit) {
  std::vector<EmailMessageRecord> messages;
  for (const auto& row :
       work_.exec_prepared("email_list_messages", activity_id,
                           std::string(domain::ToString(owner.kind)), owner.id, after_id, limit)) {
    messages.push_back(ReadMessage(row));
  }
  return messages;
}

std::vector<EmailRoute> EmailRepository::ListRoutes() {
  std::vector<EmailRoute> routes;
  for (const auto& row : work_.exec_prepared("email_list_routes")) {
    routes.push_back({.address = row[0].as<std::string>(),
                      .pipeline_id = row[1].as<int64_t>(),
                      .queue = row[2].as<std::string>()});
  }
  return routes;
}

void EmailRepository::ReplaceRoutes(const std::vector<EmailRoute>& routes) {
  work_.exec_prepared0("email_delete_routes");
  if (routes.empty()) {
    return;
  }
  std::vector<std::string> addresses, queues, named_queues;
  std::vector<int64_t> pipelines;
  for (const EmailRoute& route : routes) {
    addresses.push_back(route.address);
    pipelines.push_back(route.pipeline_id);
    queues.push_back(route.queue);
    if (!route.queue.empty()) named_queues.push_back(route.queue);
  }
  if (!named_queues.empty()) {
    work_.exec_prepared0("email_ensure_queues", pg::TextArray(named_queues));
  }
  work_.exec_prepared0("email_insert_routes", pg::TextArray(addresses), pg::IntArray(pipelines),
                       pg::TextArray(queues));
}

bool EmailRepository::PipelineTakesDeals(int64_t pipeline_id) {
  return !work_.exec_prepared("email_pipeline_takes_deals", pipeline_id).empty();
}

}  // namespace leadflow::crm
