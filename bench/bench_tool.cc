// bench-tool: the workload of bench/run.sh, generated the same way for every measurement.
//   bench-tool fill BOOTSTRAP N             publish N web-form events to leadflow.inbound.v1
//   bench-tool copy DATABASE_URL N          COPY the rows crm-core would write for those events
// The stream: 5 % exact duplicates of an earlier message (same event id), 30 % repeats of an
// earlier sender (new event id), the rest new senders. Seeded, so every run sees the same one.

#include <chrono>
#include <cstdio>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kafka/producer.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace {

using leadflow::events::v1::Identity;
using leadflow::events::v1::InboundEvent;

struct Item {
  std::string key;  // phone
  std::string event_id;
  std::string name;
  bool duplicate = false;  // same event id as an earlier item
  bool new_person = false;
};

std::vector<Item> Workload(int count) {
  std::mt19937 random(20261130);
  std::vector<Item> items;
  std::vector<std::string> people;
  items.reserve(count);
  for (int i = 0; i < count; ++i) {
    int dice = static_cast<int>(random() % 100);
    if (dice < 5 && !items.empty()) {
      Item copy = items[random() % items.size()];
      copy.duplicate = true;
      copy.new_person = false;
      items.push_back(copy);
      continue;
    }
    Item item;
    if (dice < 35 && !people.empty()) {
      item.key = people[random() % people.size()];
    } else {
      item.key = "+3361" + std::to_string(1000000 + people.size());
      people.push_back(item.key);
      item.new_person = true;
    }
    item.event_id = "bench:" + std::to_string(i);
    item.name = "Person " + std::to_string(i);
    items.push_back(item);
  }
  return items;
}

std::string Encode(const Item& item) {
  InboundEvent event;
  event.set_event_id(item.event_id);
  auto* identity = event.add_identities();
  identity->set_kind(Identity::PHONE);
  identity->set_value(item.key);
  event.mutable_person()->set_first_name(item.name);
  event.mutable_person()->set_city("Lyon");
  event.mutable_web_form()->set_form_id("contact");
  event.mutable_web_form()->set_message("I would like a quote for three rooms");
  event.mutable_web_form()->mutable_utm()->set_source("google");
  return event.SerializeAsString();
}

int Fill(const std::string& bootstrap, int count) {
  auto producer = leadflow::kafka::Producer::Create(
      {.brokers = bootstrap, .extra = {{"queue.buffering.max.messages", "2000000"}}});
  if (!producer.ok()) {
    std::fprintf(stderr, "%s\n", producer.status().ToString().c_str());
    return 1;
  }
  std::atomic<int> failed{0};
  std::set<std::string> distinct;
  for (const Item& item : Workload(count)) {
    distinct.insert(item.event_id);
    (*producer)->Produce(leadflow::kafka::kInboundTopic, item.key, Encode(item), {},
                         [&](const leadflow::kafka::DeliveryResult& result) {
                           if (!result.status.ok()) {
                             ++failed;
                           }
                         });
  }
  if (!(*producer)->Flush(std::chrono::seconds(120)).ok() || failed > 0) {
    std::fprintf(stderr, "fill: %d messages failed\n", failed.load());
    return 1;
  }
  std::printf("%zu\n", distinct.size());  // distinct event ids: what crm-core must process
  return 0;
}

// The same rows crm-core writes for this workload (one lead, identity and history entry per
// person, one activity and processed-event row per distinct event), through COPY: the physical
// baseline.
int Copy(const std::string& url, int count) {
  std::vector<Item> items = Workload(count);
  pqxx::connection connection(url);
  auto start = std::chrono::steady_clock::now();
  pqxx::work work(connection);
  std::set<std::string> seen;
  int64_t lead_id = 0;
  {
    pqxx::stream_to leads(
        work, "leads",
        std::vector<std::string>{"id", "title", "source", "first_name", "city", "comments",
                                 "source_details", "origin_event_id"});
    for (const Item& item : items) {
      if (item.new_person) {
        leads << std::make_tuple(
            ++lead_id, "Lyon – " + item.name + " – I would like a quote", "WEB_FORM", item.name,
            "Lyon", "I would like a quote for three rooms",
            R"({"reference": "contact", "utm_source": "google"})", item.event_id);
      }
    }
    leads.complete();
  }
  {
    pqxx::stream_to identities(work, "lead_identities",
                               std::vector<std::string>{"kind", "value", "lead_id"});
    int64_t id = 0;
    for (const Item& item : items) {
      if (item.new_person) {
        identities << std::make_tuple("PHONE", item.key, ++id);
      }
    }
    identities.complete();
  }
  {
    pqxx::stream_to activities(work, "activities",
                               std::vector<std::string>{"type", "owner_type", "owner_id", "subject",
                                                        "description", "origin_event_id"});
    int64_t owner = 0;
    for (const Item& item : items) {
      if (item.duplicate || !seen.insert(item.event_id).second) {
        continue;
      }
      owner = item.new_person ? owner + 1 : std::max<int64_t>(owner, 1);
      activities << std::make_tuple("TASK", "LEAD", owner, "Process the request",
                                    "I would like a quote for three rooms\n\nForm: contact",
                                    item.event_id);
    }
    activities.complete();
  }
  {
    // The timeline's CREATED entry crm-core writes with every lead it makes (docs/domain.md).
    pqxx::stream_to history(
        work, "history", std::vector<std::string>{"entity_type", "entity_id", "kind", "event_id"});
    int64_t id = 0;
    for (const Item& item : items) {
      if (item.new_person) {
        history << std::make_tuple("LEAD", ++id, "CREATED", item.event_id);
      }
    }
    history.complete();
  }
  {
    pqxx::stream_to processed(work, "processed_events", std::vector<std::string>{"event_id"});
    for (const std::string& id : seen) {
      processed << std::make_tuple(id);
    }
    processed.complete();
  }
  work.commit();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.3f\n", seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fputs("usage: bench-tool fill BOOTSTRAP N | bench-tool copy DATABASE_URL N\n", stderr);
    return 2;
  }
  std::string command = argv[1];
  int count = std::atoi(argv[3]);
  if (command == "fill") {
    return Fill(argv[2], count);
  }
  if (command == "copy") {
    return Copy(argv[2], count);
  }
  return 2;
}
