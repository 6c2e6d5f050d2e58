#pragma once
// One connection from sluice to a PostgreSQL server, and the coroutine that opens it.
//
// Flow: connect (connect_timeout) → StartupMessage → authenticate as the server asks
// (SCRAM-SHA-256, md5 or cleartext) → collect ParameterStatus and BackendKeyData →
// ReadyForQuery. The whole login runs under login_timeout.
//
// Ownership: an idle server lives in its pool; a leased one is owned by exactly one client
// session, which is the only code touching its socket until it hands it back.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pool/server_pool_fsm.hpp"
#include "pool/server_statement_cache.hpp"
#include "pool/session_params.hpp"
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/server_status.hpp"

namespace sluice::proxy {

// An ErrorResponse the server sent, copied out of the read buffer so it outlives it.
struct server_error {
  std::string severity;
  std::string sqlstate;
  std::string message;
  std::string detail;
};

struct server_connection {
  server_connection(asio::any_io_executor executor, std::size_t statement_capacity)
      : socket(std::move(executor)), statements(statement_capacity) {}

  stream_socket socket;
  byte_buffer buffer{16384};
  pool::server_id id = 0;
  std::int32_t backend_pid = 0;             // for CancelRequest and logs
  std::int32_t backend_secret = 0;          // never logged
  stream_endpoint endpoint;                 // where CancelRequests for this server go
  pool::session_params params;              // the server's session now: reports + our syncs
  pool::session_params params_at_login;     // what it reported at login: a fresh session
  char tx_status = 'I';                     // from the last ReadyForQuery
  pool::server_statement_cache statements;  // prepared statements this server holds
  std::chrono::steady_clock::time_point opened_at = std::chrono::steady_clock::now();
  // What SHOW SERVERS reads of it, shared with its pool's directory (see server_status).
  std::shared_ptr<server_status> status = std::make_shared<server_status>();
};

// Who to log in as upstream.
struct upstream_login {
  std::string user;
  std::string password;  // plain: what the server's SCRAM/md5/cleartext exchange needs
  std::string database;
  std::string options;           // libpq "options" (-c name=value ...), passed through
  std::string application_name;  // the url's, sent at startup when set
};

struct open_outcome {
  error_code error;                      // network failure or timeout
  std::optional<server_error> rejected;  // the server refused the login with this error
  std::string problem;                   // human-readable reason for logs
  explicit operator bool() const { return !error && !rejected && problem.empty(); }
};

awaitable<open_outcome> open_server(server_connection& server,
                                    const config::upstream_settings& upstream,
                                    const upstream_login& login,
                                    std::chrono::milliseconds connect_timeout,
                                    std::chrono::milliseconds login_timeout,
                                    std::uint32_t max_message_size);

// Sends `sql` as a simple Query and reads up to ReadyForQuery, recording ParameterStatus
// changes and the transaction status. Used for pings (""), parameter sync, ROLLBACK and
// DISCARD ALL: nothing of it reaches a client. The first ErrorResponse is returned.
struct exec_outcome {
  error_code error;
  std::optional<server_error> failed;
  explicit operator bool() const { return !error && !failed; }
};
awaitable<exec_outcome> execute_internal(server_connection& server, std::string_view sql,
                                         std::chrono::milliseconds timeout,
                                         std::uint32_t max_message_size);

// The same, keeping the rows (text format) the query returns: for the few reads sluice makes of
// a server's state itself.
struct rows_outcome {
  error_code error;
  std::optional<server_error> failed;
  std::vector<std::vector<std::optional<std::string>>> rows;
  explicit operator bool() const { return !error && !failed; }
};
awaitable<rows_outcome> query_internal(server_connection& server, std::string_view sql,
                                       std::chrono::milliseconds timeout,
                                       std::uint32_t max_message_size);

server_error copy_error(std::span<const char> error_body);

// Asks PostgreSQL to cancel what `server` is running, on a connection of its own, and does not
// wait for it: used before dropping a server that is still busy, so the work stops now rather
// than when the backend next notices its socket is gone.
void send_cancel_request(asio::any_io_executor executor, stream_endpoint server,
                         std::int32_t process_id, std::int32_t secret_key);
// The same, waiting until the postmaster has closed the cancel connection: by then it has
// signalled the backend, so the server can safely serve someone else (bounded by 5 s).
awaitable<void> cancel_and_wait(stream_endpoint server, std::int32_t process_id,
                                std::int32_t secret_key);

// Whether an idle server can be handed to a client: it has not hung up or sent a FATAL. What
// it said on its own meanwhile (notices, notifications, ParameterStatus after a reload) is
// read now and dealt with (see pool/idle_server_messages), not taken for a sign of death.
// Costs one non-blocking read when nothing arrived.
bool idle_server_fit(server_connection& server, std::uint32_t max_message_size);

}  // namespace sluice::proxy
