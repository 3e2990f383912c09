#include "crm-core/domain/assignment/assignment.h"
#include "crm-core/store/repositories.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

// A row of select_user / list_users (store/sql/_user_columns.sql).
User ReadUser(const pqxx::row& row) {
  return User{.id = row[0].as<int64_t>(),
              .name = row[1].as<std::string>(),
              .email = row[2].as<std::string>(),
              .active = row[3].as<bool>(),
              .create_micros = row[4].as<int64_t>(),
              .extension = row[5].as<std::string>()};
}

}  // namespace

int64_t UserRepository::Insert(const User& user) {
  return work_.exec_prepared1("insert_user", user.name, user.email, user.active, user.extension)[0]
      .as<int64_t>();
}

std::optional<User> UserRepository::Get(int64_t id) {
  pqxx::result rows = work_.exec_prepared("select_user", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ReadUser(rows[0]);
}

std::vector<User> UserRepository::List(int64_t after_id, int limit) {
  std::vector<User> users;
  for (const auto& row : work_.exec_prepared("list_users", after_id, limit)) {
    users.push_back(ReadUser(row));
  }
  return users;
}

bool UserRepository::Update(int64_t id, const std::set<std::string>& fields, const User& values) {
  auto has = [&](const char* field) { return fields.count(field) != 0; };
  if (has("active") && !values.active) {
    work_.exec_prepared("lock_acting_user", id);
  }
  return !work_
              .exec_prepared("update_user", id, has("name"), values.name, has("email"),
                             values.email, has("active"), values.active, has("extension"),
                             values.extension)
              .empty();
}

int64_t UserRepository::WithExtension(const std::string& extension, int64_t except_id) {
  pqxx::result rows = work_.exec_prepared("user_with_extension", extension, except_id);
  return rows.empty() ? 0 : rows[0][0].as<int64_t>();
}

int64_t UserRepository::WithEmail(const std::string& email, int64_t except_id) {
  pqxx::result rows = work_.exec_prepared("user_with_email", email, except_id);
  return rows.empty() ? 0 : rows[0][0].as<int64_t>();
}

void UserRepository::LockEmails() { work_.exec_prepared("lock_user_emails"); }

void UserRepository::HoldActingUser(int64_t id) { work_.exec_prepared("hold_acting_user", id); }

void UserRepository::ReleaseActingUser(int64_t id) {
  work_.exec_prepared("release_acting_user", id);
}

bool UserRepository::IsActive(int64_t id) {
  return !work_.exec_prepared("user_exists", id).empty();
}

std::vector<int64_t> UserRepository::ActiveIds() {
  std::vector<int64_t> ids;
  for (const auto& row : work_.exec_prepared("active_user_ids")) {
    ids.push_back(row[0].as<int64_t>());
  }
  return ids;
}

int64_t UserRepository::QueueUser(const std::string& queue, int64_t position) {
  std::vector<int64_t> users;
  for (const auto& row :
       work_.exec_prepared("inbound_queue_members", pg::TextArray(std::vector{queue}))) {
    users.push_back(row[1].as<int64_t>());
  }
  if (users.empty()) {
    users = ActiveIds();
  }
  return RoundRobinUser(users, position);
}

}  // namespace leadflow::crm
