#pragma once
// The admin console: a client that logs in to the database "sluice" (when no database of that
// name is configured) gets read-only views of the daemon over the simple query protocol, the
// way PgBouncer's "pgbouncer" database works. It shows counts and settings, never secrets or
// client addresses.
//
// Commands: SHOW HELP | POOLS | STATS | VERSION. Anything else is 42601.
//
// Who may use it: the users in admin_users or stats_users, as in PgBouncer. Anyone else is
// refused with 42501 once authenticated, as PostgreSQL refuses a role without CONNECT
// privilege (PgBouncer 1.25 refuses before asking for the password, with 08P01 "not allowed";
// checking the password first tells someone without it nothing about the lists).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pool/server_pool_fsm.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::proxy {

inline constexpr std::string_view admin_database = "sluice";

// What a user may do on the console.
enum class console_access {
  none,   // in neither list: refused (42501) after authenticating
  stats,  // in stats_users only: read-only SHOW commands
  admin,  // in admin_users: every command
};
console_access console_access_of(const config::settings& settings, std::string_view user);

// The message a user without access gets, with 42501.
inline constexpr std::string_view console_refusal =
    "not allowed: only admin_users and stats_users may use the sluice admin console";

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
