#pragma once
// One client connection, from its first byte to its last.
//
// Flow: startup (SSLRequest → 'S' and TLS when listen.tls allows it, else 'N'; a ClientHello
// first → direct TLS; GSSENCRequest → 'N'; CancelRequest → forward and close;
// StartupMessage 3.0) → authenticate against `users` → pick the pool for (database, user) →
// welcome (AuthenticationOk, ParameterStatus, sluice's own BackendKeyData, ReadyForQuery) →
// serve: wait for the client's next request, lease a server (transaction mode: per
// transaction; session mode: once), make the server's session parameters match the
// client's, and relay until the release policy hands the server back.
//
// Threads: the session runs on its own strand; everything here is touched only from it.
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include <spdlog/logger.h>

#include "pool/cancel_registry.hpp"
#include "pool/lease_fsm.hpp"
#include "pool/release_policy.hpp"
#include "pool/server_bound_state.hpp"
#include "pool/session_params.hpp"
#include "pool/shared_session_params.hpp"
#include "pool/statement_relay_fsm.hpp"
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/cancel_directory.hpp"
#include "proxy/client_tls.hpp"
#include "proxy/client_transport.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/credentials.hpp"
#include "proxy/daemon_context.hpp"
#include "proxy/pool_registry.hpp"
#include "proxy/shared_statement_registry.hpp"

namespace sluice::proxy {

class client_session : public std::enable_shared_from_this<client_session> {
 public:
  client_session(daemon_context& context, stream_socket socket);
  ~client_session();

  awaitable<void> run();

 private:
  enum class startup_step { proceed, done };
  awaitable<startup_step> read_startup();
  // Moves the connection onto TLS (see client_tls.hpp); false: it failed, the session ends.
  awaitable<bool> start_tls(protocol::tls_entry entry);
  awaitable<bool> log_in();
  // ParameterStatus for each name a fresh server reports, with the client's values, then
  // sluice's BackendKeyData and ReadyForQuery.
  awaitable<bool> welcome_client(const pool::session_params& reported);
  awaitable<bool> log_in_within_deadline();
  // Transaction and session mode. Its frame is what an idle client keeps: see the .cpp.
  awaitable<void> serve();
  // A request arrived while no server is held: answer it, drop it, or lease a server for it.
  // False ends the session.
  awaitable<bool> start_request();
  // Relays until the lease ends. False ends the session.
  awaitable<bool> relay_lease();
  // The admin console (database "sluice"): read-only SHOW commands, no server involved.
  awaitable<void> serve_admin();
  enum class idle_read { data, closed, timed_out };
  static constexpr std::size_t idle_read_size = 512;
  // Waits for more bytes from a client that holds no server, up to client_idle_timeout.
  awaitable<idle_read> read_idle_client_until(std::chrono::milliseconds limit);
  awaitable<idle_read> read_idle_client();
  // A transaction ended at a release point: audit settings if need be, then keep the server
  // (something of the client's lives there) or give it back. False ends the session.
  awaitable<bool> finish_transaction(bool sequence_step);
  // Transaction mode, holding a server between transactions: waits for the next request, or
  // gives the server back when the lastval window ends. False ends the session.
  awaitable<bool> wait_holding_server();
  // Reads the server's session-level settings back (see pool::apply_settings_audit).
  awaitable<bool> audit_settings();
  std::string settings_audit_sql() const;
  // Holds the server while a cancel for this client is still being delivered.
  awaitable<void> wait_for_cancels();
  awaitable<bool> lease_server();
  void give_back_server(bool reusable, std::string_view why,
                        pool::server_close_reason reason = pool::server_close_reason::error);
  // Statistics: a lease's counts, and the prepared-statement counts, into the pool's counters.
  void add_lease_counters(const pool::lease_counters& counted);
  void flush_statement_counters();
  // After a failed login: why, for sluice_client_login_failures_total.
  void count_login_failure(bool timed_out);
  // Transaction mode with a statement cache: named prepared statements are renamed per server.
  bool statements_enabled() const;
  pool::intern_function intern_function() const;
  // What a statement's identity includes besides its text (see statement_registry).
  std::string statement_context() const;
  awaitable<void> leave_server_clean();
  awaitable<void> forward_cancel(const pool::backend_key& key);
  awaitable<void> fail(std::string_view sqlstate, std::string_view message,
                       std::string_view severity = "FATAL");

  daemon_context& context_;
  client_transport socket_;
  byte_buffer in_;
  std::string peer_;

  std::string user_;
  std::string database_;
  std::vector<std::pair<std::string, std::string>> startup_settings_;  // to replay with SET
  pool::shared_session_params params_;  // the session as the client sees it
  std::shared_ptr<server_pool> pool_;
  const config::database_settings* database_settings_ = nullptr;
  std::unique_ptr<server_connection> server_;
  std::optional<pool::backend_key> cancel_key_;
  pool::exit_plan exit_plan_;             // what the held server needs if the client leaves
  pool::shared_session_params baseline_;  // the session right after login: what RESET restores
  pool::server_bound_state bound_;        // what of the client's lives on the held server
  // The held server's settings may differ from both records (see audit_settings).
  bool settings_unknown_ = false;
  std::set<std::string> custom_settings_;       // custom settings ("app.x") the client has named
  std::optional<pool::time_point> keep_until_;  // holding the server for a lastval() until then
  pool::client_statement_map statements_;       // this client's prepared statement names
  pool::statement_counters statement_counters_;
  bool logged_in_ = false;
  bool admin_ = false;                   // logged in to the admin console
  client_status status_;                 // what SHOW CLIENTS reads (see client_directory)
  std::array<char, 5> last_sqlstate_{};  // of the last error fail() sent
  std::string end_reason_ = "client closed the connection";
};

}  // namespace sluice::proxy
