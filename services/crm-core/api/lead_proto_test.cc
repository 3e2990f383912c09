// Protects: Lead's status and source ids never travel on the numbers that carried the
// LeadStatus/LeadSource enums (3 and 4), in Lead and in ListLeadsRequest: bytes of a client built
// against the enums are not misread as ids, and ids are not sent where such a client would read
// an enum. See lead.proto.

#include <gtest/gtest.h>

#include "leadflow/crm/v1/lead.pb.h"

namespace leadflow::crm {
namespace {

// A varint field `number` = `value`, as a client built against the enums encodes it.
std::string Varint(int number, int value) {
  return std::string{static_cast<char>(number << 3), static_cast<char>(value)};
}

TEST(LeadProto, EnumNumbersAndNamesAreReserved) {
  for (const google::protobuf::Descriptor* message :
       {v1::Lead::descriptor(), v1::ListLeadsRequest::descriptor()}) {
    for (int number : {3, 4}) {
      EXPECT_TRUE(message->IsReservedNumber(number)) << message->name() << " " << number;
      EXPECT_EQ(message->FindFieldByNumber(number), nullptr) << message->name();
    }
    for (const char* name : {"status", "source"}) {
      EXPECT_TRUE(message->IsReservedName(name)) << message->name() << " " << name;
    }
    EXPECT_EQ(message->FindFieldByName("status_id")->type(),
              google::protobuf::FieldDescriptor::TYPE_STRING);
    EXPECT_EQ(message->FindFieldByName("source_id")->type(),
              google::protobuf::FieldDescriptor::TYPE_STRING);
  }
}

TEST(LeadProto, OldEnumBytesAreNotReadAsIds) {
  // An old client's Lead: id 7, status LEAD_STATUS_CONVERTED (5), source LEAD_SOURCE_WEB_FORM (1).
  const std::string old_bytes = Varint(1, 7) + Varint(3, 5) + Varint(4, 1);
  v1::Lead lead;
  ASSERT_TRUE(lead.ParseFromString(old_bytes));
  EXPECT_EQ(lead.id(), 7);
  EXPECT_EQ(lead.status_id(), "");
  EXPECT_EQ(lead.source_id(), "");

  // And ids go out on their own numbers: nothing on 3 or 4 for an old client to misread.
  v1::Lead sent;
  sent.set_status_id("CONVERTED");
  sent.set_source_id("WEB_FORM");
  const std::string bytes = sent.SerializeAsString();
  ASSERT_FALSE(bytes.empty());
  for (size_t i = 0; i < bytes.size();) {
    const int tag = static_cast<unsigned char>(bytes[i]);
    int number = tag >> 3;
    size_t width = 1;
    if (tag & 0x80) {  // two-byte tag: numbers 16 and above
      number = ((tag & 0x7f) | (static_cast<unsigned char>(bytes[i + 1]) << 7)) >> 3;
      width = 2;
    }
    EXPECT_NE(number, 3);
    EXPECT_NE(number, 4);
    EXPECT_EQ(tag & 0x07, 2);  // length-delimited strings
    i += width;
    i += 1 + static_cast<unsigned char>(bytes[i]);  // short strings: one length byte
  }
}

}  // namespace
}  // namespace leadflow::crm
