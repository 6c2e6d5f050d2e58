#pragma once
// What SHOW SERVERS and SHOW POOLS tell about one server connection, readable from any thread.
//
// Threads: the pool writes the state under its mutex (login, idle, tested, active); the session
// that leases the server writes who holds it and when its request began, with relaxed stores, and
// nothing else. The fields below `published` are written once, under the pool's mutex, before the
// server first leaves `login`, and readers read them under the same mutex (see server_pool).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::proxy {

struct server_status {
  enum class state : std::uint8_t {
    login,   // connecting and logging in (PgBouncer's sv_login, "new")
    idle,    // parked in the pool
    tested,  // granted and being pinged first (pool.pre_ping)
    active,  // leased to a client
  };
  std::atomic<state> now{state::login};
  // When it entered its state, steady_clock ticks: how long an idle server has idled.
  std::atomic<std::chrono::steady_clock::rep> since{0};
  std::atomic<std::uint64_t> client{0};  // the client session holding it; 0: none
  // When the holder's latest request began, steady_clock ticks; 0: never leased.
  std::atomic<std::chrono::steady_clock::rep> request_since{0};
  std::atomic<std::uint32_t> prepared_statements{0};  // in its cache, as of its last lease

  // Published once (see above).
  std::uint64_t id = 0;
  std::int32_t backend_pid = 0;
  std::string local_address;  // sluice's end of the connection; "" for a Unix-domain socket
  std::uint16_t local_port = 0;
  std::int64_t connected_at_us = 0;  // system_clock microseconds
  std::string application_name;      // as the server reported it at login

  void enter(state s) {
    since.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                std::memory_order_relaxed);
    now.store(s, std::memory_order_relaxed);
  }
};

inline std::int64_t wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::proxy
