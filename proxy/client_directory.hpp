#pragma once
// Every client connection, for SHOW CLIENTS, SHOW POOLS (active and waiting clients, the longest
// wait), SHOW LISTS and the metrics.
//
// Each session owns its client_status (a member: no allocation of its own) and adds it to the
// directory when it is accepted, removes it in its destructor. The directory links the entries in
// an intrusive list under one mutex, taken once at accept, once at the end and once per reading:
// never per request or per message.
//
// Threads: the session writes its status; readers copy it under the directory's mutex. The
// connection's addresses are written before add(); the login fields (user, database, pool,
// application_name) once, before `logged_in` is stored with release order, and read only after
// it is loaded with acquire order. What changes per request (state, its start, the server held)
// is relaxed atomics.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <functional>
#include <optional>

namespace sluice::proxy {

class server_pool;

struct client_status {
  enum class state : std::uint8_t {
    login,    // authenticating, or waiting for the server its login needs
    idle,     // logged in, holding no server
    waiting,  // waiting for a server
    active,   // holding a server
  };

  explicit client_status(std::uint64_t id) : id(id) {}
  client_status(const client_status&) = delete;
  client_status& operator=(const client_status&) = delete;

  const std::uint64_t id;  // SHOW CLIENTS' id, unique for the daemon's life
  std::string address;     // the client's; "" when unknown
  std::uint16_t port = 0;
  std::string local_address;  // sluice's end
  std::uint16_t local_port = 0;
  std::int64_t connected_at_us = 0;  // system_clock microseconds

  // Login fields (see above).
  std::string user, database, application_name;
  const server_pool* pool = nullptr;  // null for the admin console
  std::atomic<bool> logged_in{false};

  std::atomic<state> now{state::login};
  // When the current (or last) request began, steady_clock ticks; 0: none yet.
  std::atomic<std::chrono::steady_clock::rep> request_since{0};
  std::atomic<std::uint64_t> server{0};  // the server held (server_status::id); 0: none
  std::atomic<std::uint32_t> prepared_statements{0};

 private:
  friend class client_directory;
  // Closes the connection from any thread (it posts to the session's executor and holds only a
  // weak reference); set by set_closer and called by the console's KILL, under the mutex.
  std::function<void()> closer_;
  client_status* prev_ = nullptr;  // the directory's list, under its mutex
  client_status* next_ = nullptr;
};

class client_directory {
 public:
  std::uint64_t next_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  void add(client_status& status);
  void remove(client_status& status);
  void set_closer(client_status& status, std::function<void()> closer);

  // The console's KILL_CLIENT and KILL: close one client, or every logged-in client of a
  // database (every database: nullopt). They return how many were asked to close.
  std::size_t close_client(std::uint64_t id);
  std::size_t close_clients_of(const std::optional<std::string>& database);

  // A copy of one entry, as read at one moment.
  struct client_view {
    std::uint64_t id;
    std::string address;
    std::uint16_t port;
    std::string local_address;
    std::uint16_t local_port;
    std::int64_t connected_at_us;
    bool logged_in;
    std::string user, database, application_name;  // empty until logged in
    const server_pool* pool;
    client_status::state state;
    std::chrono::steady_clock::rep request_since;
    std::uint64_t server;
    std::uint32_t prepared_statements;
  };
  // Every client, oldest first.
  std::vector<client_view> clients() const;

 private:
  mutable std::mutex mutex_;  // guards the list
  client_status* head_ = nullptr;
  client_status* tail_ = nullptr;
  std::atomic<std::uint64_t> next_id_{1};
};

}  // namespace sluice::proxy
