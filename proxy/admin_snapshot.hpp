#pragma once
// What the admin console and the metrics report, copied out of the daemon at one moment: the
// pools with their counts and counters, every logged-in client, every connected server, and the
// daemon's own counters. Everything the console's tables and the metrics text show is a pure
// function of one of these (see admin_tables and metrics_text), so they are tested without
// sockets.
//
// It holds no secret: upstream passwords and the users' passwords are never copied into it.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pool/pool_counters.hpp"
#include "pool/server_pool_fsm.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/daemon_counters.hpp"

namespace sluice::proxy {

struct admin_snapshot {
  std::int64_t now_us = 0;  // when it was taken, system_clock microseconds
  // The daemon's settings; lives as long as the daemon. Tests may leave it null.
  const config::settings* settings = nullptr;
  unsigned workers = 1;
  bool draining = false;
  bool paused = false;                          // PAUSE without a database: every pool
  std::vector<std::string> paused_databases;    // PAUSE db
  std::vector<std::string> disabled_databases;  // DISABLE db: new clients refused
  std::uint32_t clients_open = 0;               // client connections, logging in or logged in
  std::uint32_t clients_logging_in = 0;
  std::size_t prepared_statements = 0;  // distinct statements in the shared registry

  struct pool_row {
    std::string database;     // the name clients ask for
    std::string user;         // the client user the pool is for
    std::string server_user;  // who its servers log in as
    std::string host;         // the upstream, as configured
    std::uint16_t port = 0;
    std::string dbname;       // the upstream database
    std::string forced_user;  // the url's user; "" when servers log in as the client's user
    config::pool_settings settings;
    pool::server_pool_fsm::stats servers{};  // idle, active, connecting, waiting, total
    std::uint32_t servers_used = 0;          // idle, and idle past pre_ping: pinged before reuse
    std::uint32_t servers_tested = 0;        // being pinged right now
    std::uint32_t clients_active = 0;        // logged in and not waiting
    std::uint32_t clients_waiting = 0;
    std::uint64_t max_wait_us = 0;  // the longest a waiting client has waited
    pool::pool_counters::view counters;
    // The averages' base (see pool::stats_window) and the time since it, in microseconds.
    pool::pool_totals window_base;
    std::int64_t window_us = 0;
    bool reachable = true;  // its last connect succeeded, it has a server, or it never tried
  };
  std::vector<pool_row> pools;  // by (database, user)

  enum class client_state { idle, waiting, active };
  struct client_row {
    std::uint64_t id = 0;
    std::string user, database, application_name;
    client_state state = client_state::idle;
    std::string address;
    std::uint16_t port = 0;
    std::string local_address;
    std::uint16_t local_port = 0;
    std::int64_t connected_at_us = 0;
    std::int64_t request_at_us = 0;  // the latest request; its connect time before any
    std::uint64_t wait_us = 0;       // in its current request, while waiting or active
    std::uint64_t server = 0;        // the server it holds; 0: none
    std::uint32_t prepared_statements = 0;
  };
  std::vector<client_row> clients;  // logged in, oldest first

  enum class server_state { active, idle, used, tested };
  struct server_row {
    std::uint64_t id = 0;
    std::string user, database;  // who it logged in as; the pool's database
    server_state state = server_state::idle;
    std::string address;  // the upstream host, as configured
    std::uint16_t port = 0;
    std::string local_address;
    std::uint16_t local_port = 0;
    std::int64_t connected_at_us = 0;
    std::int64_t request_at_us = 0;
    bool close_needed = false;  // past pool.recycle: closed when its client gives it back
    std::uint64_t client = 0;   // the client holding it; 0: none
    std::int32_t backend_pid = 0;
    std::string application_name;
    std::uint32_t prepared_statements = 0;
  };
  std::vector<server_row> servers;  // by pool, then id

  std::array<std::uint64_t, login_failure_reasons> login_failures{};
  std::vector<std::pair<std::string, std::uint64_t>> errors_by_class;
};

struct daemon_context;
// Reads the live state: a short lock per pool and one on the client directory.
admin_snapshot take_snapshot(daemon_context& context);

}  // namespace sluice::proxy
