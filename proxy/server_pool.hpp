#pragma once
// One pool of servers for a (database, user): the pure server_pool_fsm plus the sockets and
// waiting clients it decides about.
//
// Threads: any worker thread may call acquire()/release(). `mutex_` guards the fsm, the idle
// servers and the waiter table, and is never held across I/O: decisions are collected under
// the lock and carried out (wake-ups posted, connections spawned, sockets closed) after it.
// A waiting client sleeps on a timer bound to its own strand; a grant moves the server into
// the waiter's slot and posts a cancel of that timer to the waiter's strand.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include "pool/pool_counters.hpp"
#include "pool/server_pool_fsm.hpp"
#include "pool/shared_session_params.hpp"
#include "pool/stats_window.hpp"
#include "proxy/asio.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/worker_set.hpp"

namespace sluice::proxy {

struct lease_result {
  enum class failure {
    none,       // `server` is ready for use
    timed_out,  // waited `timeout` without getting a server (53300)
    rejected,   // the server refused our login; `error` says why
    stopping,   // the daemon is shutting down
  };
  std::unique_ptr<server_connection> server;
  failure why = failure::none;
  std::optional<server_error> error;
};

class server_pool : public std::enable_shared_from_this<server_pool> {
 public:
  server_pool(worker_set& workers, std::string name, config::database_settings database,
              upstream_login login, std::uint32_t max_message_size,
              std::shared_ptr<spdlog::logger> log, std::string client_user = {});

  const std::string& name() const { return name_; }
  const config::pool_settings& settings() const { return database_.pool; }
  const config::database_settings& database() const { return database_; }
  const std::string& client_user() const { return client_user_; }  // the pool's key, with the db
  const std::string& server_user() const { return login_.user; }   // who its servers log in as

  // Starts the janitor (timeouts, idle/recycle closing, min_size warm-up).
  void start();
  void stop();

  // Waits first come, first served for a live server. Called from the client's strand.
  awaitable<lease_result> acquire();

  // Hands a leased server back. reusable=false closes it (broken, or left mid-transaction), and
  // `why` says which for the statistics.
  void release(std::unique_ptr<server_connection> server, bool reusable,
               pool::server_close_reason why = pool::server_close_reason::error);

  // Statistics: what the pool's clients did (the sessions add to it), and the window the
  // averages of SHOW STATS are measured over, rolled every stats_period by the daemon.
  pool::pool_counters& counters() { return counters_; }
  const pool::pool_counters& counters() const { return counters_; }
  void roll_stats_window(pool::time_point now);
  pool::stats_window stats_window() const;

  // Every connected server, for SHOW SERVERS (servers still logging in are only counted).
  struct server_view {
    std::uint64_t id;
    std::int32_t backend_pid;
    std::string local_address;
    std::uint16_t local_port;
    std::int64_t connected_at_us;
    std::string application_name;
    server_status::state state;
    std::chrono::steady_clock::duration in_state;
    std::uint64_t client;
    std::chrono::steady_clock::rep request_since;
    std::uint32_t prepared_statements;
  };
  std::vector<server_view> servers() const;

  // Whether the upstream answered the last time the pool connected to it.
  enum class upstream_state {
    unknown,      // no connect attempted yet
    reachable,    // the last connect and login succeeded
    unreachable,  // the last one failed (network, timeout, or the server refused the login)
  };
  upstream_state upstream() const { return upstream_.load(std::memory_order_relaxed); }

  pool::server_pool_fsm::stats snapshot() const;
  // Whether any client waits for a server now.
  bool has_waiters() const;

  // What a login with these exact startup settings resolved to last time, so the next one
  // needs no server: the ParameterStatus list a fresh server reports, and the client's session
  // after its settings were applied (PostgreSQL's canonical spellings). Forgotten whenever a
  // new server reports different defaults (ALTER ROLE ... SET, a reconfigured PostgreSQL).
  struct login_profile {
    pool::session_params reported;
    pool::shared_session_params session;  // shared by every client that logs in this way
  };
  using startup_settings = std::vector<std::pair<std::string, std::string>>;
  std::optional<login_profile> find_login_profile(const startup_settings& settings) const;
  void remember_login_profile(const startup_settings& settings, login_profile profile);

 private:
  struct waiter_slot;
  struct effects;

  void apply_locked(const pool::server_pool_fsm::decisions& decided, effects& fx);
  void carry_out(effects& fx);
  awaitable<void> open_one(pool::server_id id);
  awaitable<void> janitor();
  awaitable<bool> verify(server_connection& server, bool needs_ping);
  // Moves a leased server's socket onto the leasing session's context.
  static void adopt(server_connection& server, const asio::any_io_executor& executor);
  void forget_profiles_if_defaults_changed(const pool::session_params& reported);  // under mutex_
  void close_server(std::unique_ptr<server_connection> server, std::string_view reason,
                    pool::server_close_reason why);
  // Why the fsm dropped an idle server it did not say why about: its age and idle time tell.
  pool::server_close_reason classify_close(const server_connection& server) const;
  // A waiter slot for a client on `executor`: a spare one when there is (under mutex_), so a
  // wait for a server costs no allocation and no timer set-up.
  std::shared_ptr<waiter_slot> take_spare_slot(const asio::any_io_executor& executor);
  void keep_spare_slot(std::shared_ptr<waiter_slot> slot);

  worker_set& workers_;
  const std::string name_;
  const config::database_settings database_;
  const upstream_login login_;
  const std::uint32_t max_message_size_;
  std::shared_ptr<spdlog::logger> log_;
  const std::string client_user_;
  pool::pool_counters counters_;
  std::atomic<upstream_state> upstream_{upstream_state::unknown};
  mutable std::mutex stats_mutex_;  // guards window_ only
  pool::stats_window window_{pool::clock::now()};

  mutable std::mutex mutex_;  // guards everything below
  pool::server_pool_fsm fsm_;
  std::unordered_map<pool::server_id, std::unique_ptr<server_connection>> idle_;
  std::unordered_map<pool::waiter_id, std::shared_ptr<waiter_slot>> waiters_;
  pool::waiter_id next_waiter_ = 1;
  std::vector<std::shared_ptr<waiter_slot>> spare_slots_;  // each used by nobody else
  bool stopping_ = false;
  // What SHOW SERVERS reads, for every connected server (idle or leased).
  std::unordered_map<pool::server_id, std::shared_ptr<server_status>> statuses_;
  std::map<startup_settings, login_profile> login_profiles_;
  pool::session_params profile_basis_;  // the defaults the profiles were made against
  asio::steady_timer janitor_timer_;
  // When the janitor will next run (steady_clock ticks), readable from any thread.
  std::atomic<pool::clock::rep> janitor_due_{0};
};

}  // namespace sluice::proxy
