#pragma once
// sluice logging in to a PostgreSQL server, as pure logic: the StartupMessage, the
// authentication the server asks for (SCRAM-SHA-256, md5 or a cleartext password), then the
// session's ParameterStatus values and BackendKeyData up to the first ReadyForQuery.
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP
//
// Flow (the driver, proxy/server_connection.cpp, only connects, reads, writes and times out):
//   start()                 -> the StartupMessage to send
//   on_server_bytes(bytes)  -> how much it consumed, what to send back (an authentication
//                              answer), and the state: reading (more to come), ready (logged
//                              in: see session()), rejected (the server's ErrorResponse: see
//                              rejection()) or failed (the server broke the protocol or asked
//                              for what sluice cannot do: see problem()).
// Each call takes only complete messages and leaves a partial one unconsumed, so bytes may
// arrive split anywhere.
//
// With TLS (sslmode asks for it, see server_tls_policy): ssl_request(plan) instead of start()
//   -> on_server_bytes(answer): 'S' -> tls_handshake (the driver runs the handshake, then
//      sends tls_established()'s StartupMessage); 'N' -> the StartupMessage in plain text as
//      the reply, or failed when the plan requires TLS; anything else -> failed.
//   Bytes after the 'S' were sent before encryption: failed (libpq's CVE-2021-23222 check).
// The driver does not use this step yet: TLS towards servers is still refused by the config.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "protocol/scram_client_fsm.hpp"
#include "protocol/server_tls_policy.hpp"

namespace sluice::protocol {

class server_login_fsm {
 public:
  struct login {
    std::string user;
    std::string password;  // plain: what SCRAM, md5 and cleartext all need
    std::string database;
    std::string options;           // libpq "options" (-c name=value ...), passed through
    std::string application_name;  // "" = none
  };
  // What the server told about the session once it is ready.
  struct session {
    std::vector<std::pair<std::string, std::string>> parameters;  // ParameterStatus, in order
    std::int32_t process_id = 0;  // BackendKeyData, for CancelRequest
    std::int32_t secret_key = 0;
    char transaction_status = 'I';
  };
  // The server's ErrorResponse refusing the login.
  struct rejection {
    std::string severity;
    std::string sqlstate;
    std::string message;
    std::string detail;
  };

  enum class state {
    reading,        // waiting for more from the server
    ready,          // ReadyForQuery arrived: logged in
    rejected,       // the server sent an ErrorResponse
    failed,         // a protocol violation or an authentication sluice cannot do
    tls_handshake,  // the server said 'S' to ssl_request(): handshake, then tls_established()
  };
  struct step {
    std::size_t consumed = 0;
    std::string reply;  // to send to the server before reading on
    state now = state::reading;
  };

  // `max_message_size` caps one message from the server; a longer one fails the login.
  server_login_fsm(login credentials, std::uint32_t max_message_size);

  std::string start() const;
  // The SSLRequest to send first when `plan.first_attempt_tls`; the answer then goes to
  // on_server_bytes like any other bytes.
  std::string ssl_request(const server_tls_plan& plan);
  // After a successful handshake: the StartupMessage, to send over TLS.
  std::string tls_established();
  step on_server_bytes(std::span<const char> bytes);

  state current() const { return state_; }
  const session& ready_session() const { return session_; }
  const rejection& refused() const { return rejection_; }
  const std::string& problem() const { return problem_; }

 private:
  // One Authentication request; appends the answer to `reply`, or sets problem_.
  void on_authentication(std::span<const char> body, std::string& reply);
  void fail(std::string problem);
  // The one-byte answer to SSLRequest at the start of `bytes`.
  step on_ssl_answer_byte(std::span<const char> bytes);

  login login_;
  std::uint32_t max_message_size_;
  state state_ = state::reading;
  std::optional<server_tls_plan> awaiting_ssl_answer_;  // set by ssl_request() until answered
  std::optional<scram_client_fsm> scram_;
  bool authenticated_ = false;  // AuthenticationOk arrived
  session session_;
  rejection rejection_;
  std::string problem_;
};

}  // namespace sluice::protocol
