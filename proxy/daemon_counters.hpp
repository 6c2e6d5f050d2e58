#pragma once
// Counts that belong to no pool: failed logins by reason, and every ErrorResponse sent to a client
// by SQLSTATE class. A login that fails often has no pool yet (a wrong password, an unknown
// database), and what such a client sent is its own choice: these have no database or user label,
// so a stranger cannot make the metrics grow.
//
// Threads: relaxed atomics, added to from any worker, read by the console and scrapes.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "pool/pool_counters.hpp"

namespace sluice::proxy {

enum class login_failure : std::uint8_t {
  password,          // 28P01: wrong password, or a user sluice does not know
  no_such_database,  // 3D000
  not_allowed,       // 42501: the console, for a user in neither admin_users nor stats_users
  too_many_clients,  // 53300: max_clients reached
  no_server,         // 53300: no server within pool.timeout for the login
  server_refused,    // the server refused the login or its startup settings, or broke
  protocol,          // a malformed startup packet or authentication exchange
  timeout,           // client_login_timeout passed
  stopping,          // sluice was shutting down
};
inline constexpr std::size_t login_failure_reasons = 9;

inline std::string_view name_of(login_failure reason) {
  constexpr std::array<std::string_view, login_failure_reasons> names{
      "password",       "no_such_database", "not_allowed", "too_many_clients", "no_server",
      "server_refused", "protocol",         "timeout",     "stopping"};
  return names[static_cast<std::size_t>(reason)];
}

struct daemon_counters {
  std::array<std::atomic<std::uint64_t>, login_failure_reasons> login_failures{};
  pool::error_counters errors;

  void count_login_failure(login_failure reason) {
    login_failures[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace sluice::proxy
