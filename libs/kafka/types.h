#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace leadflow::kafka {

struct Header {
  std::string key;
  std::string value;
};

struct Message {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  std::string value;
  std::vector<Header> headers;
};

/// librdkafka properties passed through as they are (e.g. "security.protocol").
using Properties = std::map<std::string, std::string>;

/// The topics of ARCHITECTURE.md, in one place.
inline constexpr char kInboundTopic[] = "leadflow.inbound.v1";
inline constexpr char kInboundDlqTopic[] = "leadflow.inbound.dlq.v1";
inline constexpr char kCrmEventsTopic[] = "leadflow.crm-events.v1";

}  // namespace leadflow::kafka
