// UserService: users over gRPC (admin role for changes).
#include <functional>

#include "absl/strings/str_cat.h"
#include "crm-core/api/common/fields.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/call/call.h"
#include "crm-core/domain/common/errors.h"
#include "crm-core/domain/common/limits.h"
#include "crm-core/store/repositories.h"
#include "identity/identity.h"
#include "identity/person_name.h"

namespace leadflow::crm {
namespace {

void ToProto(const User& user, v1::User* out) {
  out->set_id(user.id);
  out->set_name(user.name);
  out->set_email(user.email);
  out->set_active(user.active);
  out->set_extension(user.extension);
  *out->mutable_create_time() = FromMicros(user.create_micros);
}

// The fields `written` names ("name", "email", "extension"): all of them on create, the masked
// ones on update, as a field the mask leaves out is neither written nor a reason to refuse.
absl::Status CheckUserText(const v1::User& user,
                           const std::function<bool(const std::string&)>& written) {
  // A user's name is configured by the admin, and a call's operator may be named by it
  // (telephony-ingest takes at most 256 bytes there): a label, not a customer's name.
  if (written("name")) {
    if (absl::Status check = CheckShortText("name", user.name(), domain::kMaxLabelBytes);
        !check.ok()) {
      return check;
    }
  }
  if (written("email")) {
    if (absl::Status check = CheckText("email", user.email()); !check.ok()) {
      return check;
    }
  }
  // A user's name is what managers pick them by, and the round-robin hands them leads: a name of
  // spaces or invisible characters would be an assignee nobody can see.
  if (written("name") && !user.name().empty() && !identity::HasVisibleCharacter(user.name())) {
    return absl::InvalidArgumentError("name has no visible character");
  }
  if (written("extension") && !user.extension().empty() &&
      !domain::IsValidExtension(user.extension())) {
    return absl::InvalidArgumentError(absl::StrCat("extension ",
                                                   domain::Quoted(user.extension().substr(0, 32)),
                                                   " must be 1–32 of A-Z a-z 0-9 * # _ . -"));
  }
  return absl::OkStatus();
}

// A phone extension is one user's (users_extension): a call taken on it is theirs. Taken by
// another user: ALREADY_EXISTS naming them, so that the admin knows whose to change.
absl::Status ExtensionFree(UserRepository& users, const std::string& extension, int64_t self) {
  if (extension.empty()) {
    return absl::OkStatus();
  }
  if (int64_t holder = users.WithExtension(extension, self); holder != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("extension ", extension, " is already used by user ", holder));
  }
  return absl::OkStatus();
}

// Runs `write`; when it meets users_extension anyway (another request took the extension between
// the check and the write), says who has it, read after the other request committed.
absl::Status WriteUser(pqxx::connection& connection, const std::string& extension, int64_t self,
                       const std::function<absl::Status()>& write) {
  try {
    return write();
  } catch (const pqxx::unique_violation&) {
    pqxx::read_transaction work(connection);
    UserRepository users(work);
    if (absl::Status free = ExtensionFree(users, extension, self); !free.ok()) {
      return free;
    }
    throw;
  }
}

// The email a user is stored with: empty (none), or the address NormalizeEmail gives (calls'
// operators are matched by it), held by no other user — ALREADY_EXISTS naming the one who has it.
// Under UserRepository::LockEmails, taken here, so that two requests cannot both take it.
absl::StatusOr<std::string> UserEmail(UserRepository& users, const std::string& raw, int64_t self) {
  if (raw.empty()) {
    return std::string();
  }
  absl::StatusOr<std::string> email = identity::NormalizeEmail(raw);
  if (!email.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("email: ", email.status().message()));
  }
  users.LockEmails();
  if (int64_t holder = users.WithEmail(*email, self); holder != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("email ", *email, " is already used by user ", holder));
  }
  return email;
}

}  // namespace

grpc::ServerUnaryReactor* UserApi::CreateUser(grpc::CallbackServerContext* context,
                                              const v1::CreateUserRequest* request,
                                              v1::User* response) {
  return RunCall(
      context, __func__, backend_, Right::kManageUsers, response,
      [=](pqxx::connection& connection) {
        const v1::User& user = request->user();
        if (user.name().empty()) {
          return absl::InvalidArgumentError("name is required");
        }
        if (absl::Status check = CheckUserText(user, [](const std::string&) { return true; });
            !check.ok()) {
          return check;
        }
        return WriteUser(connection, user.extension(), 0, [&]() -> absl::Status {
          pqxx::work work(connection);
          UserRepository users(work);
          if (absl::Status free = ExtensionFree(users, user.extension(), 0); !free.ok()) {
            return free;
          }
          absl::StatusOr<std::string> email = UserEmail(users, user.email(), 0);
          if (!email.ok()) {
            return email.status();
          }
          // New users are active unless the request says otherwise with an explicit
          // false… proto3 cannot tell "false" from "unset", so a user is created
          // active and deactivated by update.
          int64_t id = users.Insert(User{
              .name = user.name(), .email = *email, .active = true, .extension = user.extension()});
          ToProto(*users.Get(id), response);
          work.commit();
          return absl::OkStatus();
        });
      });
}

grpc::ServerUnaryReactor* UserApi::GetUser(grpc::CallbackServerContext* context,
                                           const v1::GetUserRequest* request, v1::User* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=](pqxx::connection& connection) {
                   pqxx::read_transaction work(connection);
                   std::optional<User> user = UserRepository(work).Get(request->id());
                   if (!user) {
                     return domain::NotFound("user", request->id());
                   }
                   ToProto(*user, response);
                   return absl::OkStatus();
                 });
}

grpc::ServerUnaryReactor* UserApi::ListUsers(grpc::CallbackServerContext* context,
                                             const v1::ListUsersRequest* request,
                                             v1::ListUsersResponse* response) {
  return RunCall(context, __func__, backend_, Right::kRead, response,
                 [=, this](pqxx::connection& connection) {
                   auto page = ParsePage(backend_.page_token_key, *request);
                   if (!page.ok()) {
                     return page.status();
                   }
                   pqxx::read_transaction work(connection);
                   // Users are listed in id order (ascending): the token holds the last id of the
                   // page.
                   FillPage(
                       UserRepository(work).List(page->after_id, page->limit()), *page,
                       [&](const User& user) { ToProto(user, response->add_users()); },
                       response->mutable_next_page_token());
                   return absl::OkStatus();
                 });
}

grpc::ServerUnaryReactor* UserApi::UpdateUser(grpc::CallbackServerContext* context,
                                              const v1::UpdateUserRequest* request,
                                              v1::User* response) {
  return RunCall(
      context, __func__, backend_, Right::kManageUsers, response,
      [=](pqxx::connection& connection) {
        auto paths = UpdatePaths(request->update_mask(), {"name", "email", "active", "extension"},
                                 v1::User::descriptor());
        if (!paths.ok()) {
          return paths.status();
        }
        const v1::User& user = request->user();
        if (paths->count("name") != 0 && user.name().empty()) {
          return absl::InvalidArgumentError("name cannot be empty");
        }
        if (absl::Status check = CheckUserText(
                user, [&](const std::string& field) { return paths->count(field) != 0; });
            !check.ok()) {
          return check;
        }
        const std::string extension = paths->count("extension") != 0 ? user.extension() : "";
        return WriteUser(connection, extension, user.id(), [&]() -> absl::Status {
          pqxx::work work(connection);
          UserRepository users(work);
          if (absl::Status free = ExtensionFree(users, extension, user.id()); !free.ok()) {
            return free;
          }
          std::string email;
          if (paths->count("email") != 0) {
            absl::StatusOr<std::string> checked = UserEmail(users, user.email(), user.id());
            if (!checked.ok()) {
              return checked.status();
            }
            email = *std::move(checked);
          }
          if (!users.Update(user.id(), *paths,
                            User{.name = user.name(),
                                 .email = email,
                                 .active = user.active(),
                                 .extension = user.extension()})) {
            return domain::NotFound("user", user.id());
          }
          ToProto(*users.Get(user.id()), response);
          work.commit();
          return absl::OkStatus();
        });
      });
}

}  // namespace leadflow::crm
