#pragma once

#include <cstdint>
#include <string>

namespace leadflow::crm {

/// Someone leads and activities are assigned to; only active users get new ones.
struct User {
  int64_t id = 0;
  std::string name;
  std::string email;
  bool active = true;
  int64_t create_micros = 0;
  std::string extension;  // the phone extension; empty: none
};

}  // namespace leadflow::crm
