#pragma once

#include <vector>

#include "pg/migrations.h"

namespace leadflow::crm {

/// crm-core's schema, from services/crm-core/migrations/*.sql, embedded at build time.
const std::vector<pg::Migration>& Migrations();

}  // namespace leadflow::crm
