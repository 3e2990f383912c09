#pragma once

// One line of a record's timeline (the history table; common.proto HistoryEntry): the one record
// type every writer uses (API, inbound consumer, conversion, merges, the mode switch job) and
// HistoryService reads.

#include <cstdint>
#include <string>
#include <utility>

#include "crm-core/domain/common/types.h"

namespace leadflow::crm {

/// Types are LEAD, CONTACT, COMPANY, DEAL; kinds CREATED, FIELD_CHANGED, STATUS_CHANGED,
/// STAGE_CHANGED, LINKED, UNLINKED, MERGED, CONVERTED, DELETED. Ids 0 and empty texts are stored
/// as NULL (related, user, event) or '' (field, values).
struct HistoryRecord {
  int64_t id = 0;
  std::string entity_type;
  int64_t entity_id = 0;
  std::string kind;
  std::string field;
  std::string old_value;
  std::string new_value;
  std::string related_type;  // empty: none
  int64_t related_id = 0;
  int64_t user_id = 0;   // 0: inbound traffic or the system
  std::string event_id;  // the inbound event, if any
  int64_t at_micros = 0;

  /// An entry of `kind` on an entity named by its kind.
  static HistoryRecord Of(domain::EntityKind entity, int64_t entity_id, std::string kind) {
    HistoryRecord record;
    record.entity_type = std::string(domain::ToString(entity));
    record.entity_id = entity_id;
    record.kind = std::move(kind);
    return record;
  }
  /// Names the related record.
  HistoryRecord& RelatedTo(domain::EntityRef related) {
    related_type = std::string(domain::ToString(related.kind));
    related_id = related.id;
    return *this;
  }
};

}  // namespace leadflow::crm
