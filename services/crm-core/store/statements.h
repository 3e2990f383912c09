#pragma once

#include <vector>

#include "pg/pg.h"

namespace leadflow::crm {

/// Every SQL statement of crm-core, by name (the prepared-statement name): store/sql/*/NAME.sql,
/// embedded at build time.
const std::vector<pg::Statement>& Statements();

}  // namespace leadflow::crm
