// StatusService: the configurable lead statuses and lead sources (Bitrix24's crm.status).
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {
namespace {

absl::StatusOr<StatusKind> KindOf(v1::StatusKind kind) {
  switch (kind) {
    case v1::STATUS_KIND_LEAD_STATUS:
      return StatusKind::kLeadStatus;
    case v1::STATUS_KIND_SOURCE:
      return StatusKind::kSource;
    default:
      return absl::InvalidArgumentError(
          "kind is required: STATUS_KIND_LEAD_STATUS or "
          "STATUS_KIND_SOURCE");
  }
}

std::optional<Semantics> FromProto(v1::Semantics semantics) {
  switch (semantics) {
    case v1::SEMANTICS_PROCESS:
      return Semantics::kProcess;
    case v1::SEMANTICS_SUCCESS:
      return Semantics::kSuccess;
    case v1::SEMANTICS_FAILURE:
      return Semantics::kFailure;
    default:
      return std::nullopt;
  }
}

v1::Semantics ToProto(std::optional<Semantics> semantics) {
  if (!semantics) {
    return v1::SEMANTICS_UNSPECIFIED;
  }
  switch (*semantics) {
    case Semantics::kProcess:
      return v1::SEMANTICS_PROCESS;
    case Semantics::kSuccess:
      return v1::SEMANTICS_SUCCESS;
    case Semantics::kFailure:
      return v1::SEMANTICS_FAILURE;
  }
  return v1::SEMANTICS_UNSPECIFIED;
}

void ToProto(const StatusEntry& entry, v1::Status* out) {
  out->set_id(entry.id);
  out->set_name(entry.name);
  out->set_sort(entry.sort);
  out->set_semantics(ToProto(entry.semantics));
  out->set_system(entry.system);
}

const StatusEntry* Find(const std::vector<StatusEntry>& entries, const std::string& id) {
  for (const StatusEntry& entry : entries) {
    if (entry.id == id) {
      return &entry;
    }
  }
  return nullptr;
}

absl::Status NotFound(StatusKind kind, const std::string& id) {
  return domain::NotFound(kind == StatusKind::kLeadStatus ? "lead status" : "lead source", id);
}

}  // namespace

grpc::ServerUnaryReactor* StatusApi::ListStatuses(grpc::CallbackServerContext* context,
                                                  const v1::ListStatusesRequest* request,
                                                  v1::ListStatusesResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   auto kind = KindOf(request->kind());
                   if (!kind.ok()) {
                     return kind.status();
                   }
                   pqxx::read_transaction work(connection);
                   for (const StatusEntry& entry : StatusRepository(work, *kind).List()) {
                     ToProto(entry, response->add_statuses());
                   }
                   return absl::OkStatus();
                 });
}

grpc::ServerUnaryReactor* StatusApi::CreateStatus(grpc::CallbackServerContext* context,
                                                  const v1::CreateStatusRequest* request,
                                                  v1::Status* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto kind = KindOf(request->kind());
        if (!kind.ok()) {
          return kind.status();
        }
        const v1::Status& status = request->status();
        if (absl::Status text = CheckShortText("name", status.name(), domain::kMaxLabelBytes);
            !text.ok()) {
          return text;
        }
        StatusEntry entry{.id = status.id(),
                          .name = status.name(),
                          .sort = status.sort(),
                          .semantics = FromProto(status.semantics()),
                          .system = false};
        pqxx::work work(connection);
        StatusRepository statuses(work, *kind);
        statuses.Lock();
        const std::vector<StatusEntry> existing = statuses.List();
        if (absl::Status check = CheckNewStatus(*kind, existing, entry); !check.ok()) {
          return check;
        }
        if (absl::Status check = CheckStatusName(existing, "", entry.name); !check.ok()) {
          return check;
        }
        if (entry.sort == 0) {
          entry.sort = NextSort(existing, entry.semantics);
        }
        std::vector<StatusEntry> after = existing;
        after.push_back(entry);
        if (absl::Status check = CheckStatusOrder(after, entry.id); !check.ok()) {
          return check;
        }
        if (absl::Status check = CheckStatusSort(existing, entry.id, entry.sort); !check.ok()) {
          return check;
        }
        statuses.Insert(entry);
        work.commit();
        ToProto(entry, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* StatusApi::UpdateStatus(grpc::CallbackServerContext* context,
                                                  const v1::UpdateStatusRequest* request,
                                                  v1::Status* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto kind = KindOf(request->kind());
        if (!kind.ok()) {
          return kind.status();
        }
        auto paths = UpdatePaths(request->update_mask(), {"name", "sort", "semantics"},
                                 v1::Status::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        const v1::Status& status = request->status();
        if (paths->count("name") != 0 && status.name().empty()) {
          return absl::InvalidArgumentError("name cannot be empty");
        }
        if (absl::Status text = CheckShortText("name", status.name(), domain::kMaxLabelBytes);
            !text.ok()) {
          return text;
        }
        pqxx::work work(connection);
        StatusRepository statuses(work, *kind);
        statuses.Lock();
        const std::vector<StatusEntry> existing = statuses.List();
        const StatusEntry* current = Find(existing, status.id());
        if (current == nullptr) {
          return NotFound(*kind, status.id());
        }
        StatusEntry changed = *current;
        if (paths->count("name") != 0) {
          changed.name = status.name();
        }
        if (paths->count("sort") != 0) {
          changed.sort = status.sort();
        }
        if (paths->count("semantics") != 0) {
          std::optional<Semantics> semantics = FromProto(status.semantics());
          if (!semantics) {
            return absl::InvalidArgumentError("semantics must be PROCESS, SUCCESS or FAILURE");
          }
          if (absl::Status check = CheckSemanticsChange(existing, *current, *semantics);
              !check.ok()) {
            return check;
          }
          if (*semantics != current->semantics) {
            // The status's row locked first: a lead taking it meanwhile holds the row (its
            // foreign key check) until it commits, and is counted; later ones wait for us.
            statuses.LockEntry(current->id);
            if (absl::Status check =
                    CheckSemanticsInUse(*current, *semantics, statuses.CountUsing(current->id));
                !check.ok()) {
              return check;
            }
          }
          changed.semantics = semantics;
        }
        if (paths->count("name") != 0) {
          if (absl::Status check = CheckStatusName(existing, changed.id, changed.name);
              !check.ok()) {
            return check;
          }
        }
        if (paths->count("sort") != 0 || paths->count("semantics") != 0) {
          std::vector<StatusEntry> after = existing;
          for (StatusEntry& entry : after) {
            if (entry.id == changed.id) entry = changed;
          }
          if (absl::Status check = CheckStatusOrder(after, changed.id); !check.ok()) {
            return check;
          }
        }
        if (paths->count("sort") != 0 && changed.sort != current->sort) {
          if (absl::Status check = CheckStatusSort(existing, changed.id, changed.sort);
              !check.ok()) {
            return check;
          }
        }
        statuses.Update(changed);
        work.commit();
        ToProto(changed, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* StatusApi::DeleteStatus(grpc::CallbackServerContext* context,
                                                  const v1::DeleteStatusRequest* request,
                                                  v1::DeleteStatusResponse* response) {
  return RunCall(
      context, __func__, backend_, Right::kConfigure, response, [=](pqxx::connection& connection) {
        auto kind = KindOf(request->kind());
        if (!kind.ok()) {
          return kind.status();
        }
        pqxx::work work(connection);
        StatusRepository statuses(work, *kind);
        statuses.Lock();
        const std::vector<StatusEntry> existing = statuses.List();
        const StatusEntry* current = Find(existing, request->id());
        if (current == nullptr) {
          return NotFound(*kind, request->id());
        }
        // A lead taking this status meanwhile makes the delete fail on the foreign key
        // (FAILED_PRECONDITION too).
        if (absl::Status check = CheckDeleteStatus(*current, statuses.CountUsing(request->id()));
            !check.ok()) {
          return check;
        }
        statuses.Delete(request->id());
        work.commit();
        return absl::OkStatus();
      });
}

}  // namespace leadflow::crm
