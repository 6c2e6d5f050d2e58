#pragma once
// The admin console: a client that logs in to the database "sluice" (when no database of that
// name is configured) gets read-only views of the daemon over the simple query protocol, the
// way PgBouncer's "pgbouncer" database works. It shows counts and settings, never secrets or
// client addresses.
//
// Commands: SHOW HELP | POOLS | STATS | VERSION. Anything else is 42601.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pool/server_pool_fsm.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::proxy {

inline constexpr std::string_view admin_database = "sluice";

// What the console reports, gathered by the session before it answers.
struct admin_snapshot {
  struct pool_row {
    std::string name;  // "database/user"
    config::pool_settings settings;
    pool::server_pool_fsm::stats stats;
  };
  std::vector<pool_row> pools;
  std::uint32_t clients = 0;
  std::size_t prepared_statements = 0;  // distinct statements in the registry
  unsigned workers = 0;
};

class pool_registry;
class shared_statement_registry;
// Reads the live counts (a short lock per pool).
admin_snapshot take_snapshot(const pool_registry& pools,
                             const shared_statement_registry& statements, std::uint32_t clients,
                             unsigned workers);

// The full reply to one simple Query: result rows or an ErrorResponse, then ReadyForQuery.
std::string answer_admin_query(std::string_view sql, const admin_snapshot& snapshot);

}  // namespace sluice::proxy
