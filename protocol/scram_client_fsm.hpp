#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "protocol/result.hpp"
#include "protocol/scram_crypto.hpp"

namespace sluice::protocol {

// sluice acting as the SCRAM-SHA-256 client: it logs in to a PostgreSQL server with a plain
// password, as libpq's fe-auth-scram.c does, without channel binding (gs2 header "n,,").
// https://www.postgresql.org/docs/15/sasl-authentication.html#SASL-SCRAM-SHA-256
//
// Flow:
//   initial              --client_first_message--> awaiting_server_first
//   awaiting_server_first --on_server_first------> awaiting_server_final (returns client-final)
//   awaiting_server_final --on_server_final------> done
//   any error, or a call out of order             --> failed (every later call: errc::malformed)
// The caller sends client-first in a SASLInitialResponse for "SCRAM-SHA-256", client-final in a
// SASLResponse, and checks the AuthenticationSASLFinal data with on_server_final before trusting
// the server's AuthenticationOk.
class scram_client_fsm {
 public:
  // An empty `client_nonce` draws 18 random bytes, base64-encoded, like libpq. PostgreSQL ignores
  // the SCRAM user name (the StartupMessage names the role), so `user` is normally empty; it is
  // there for the RFC test vectors and non-PostgreSQL servers.
  explicit scram_client_fsm(std::string password, std::string client_nonce = {},
                            std::string user = {});

  // "n,,n=<user>,r=<nonce>".
  std::string client_first_message();

  // server-first-message -> client-final-message "c=biws,r=<nonce>,p=<ClientProof>".
  // errc::malformed if the server's nonce does not extend ours or a field is bad;
  // errc::unsupported_mechanism for a mandatory extension ("m=").
  result<std::string> on_server_first(std::string_view server_first_message);

  // Verifies "v=<ServerSignature>": errc::auth_failed if it does not match or the server sent
  // "e=<error>"; errc::malformed for anything else. Empty error code on success.
  std::error_code on_server_final(std::string_view server_final_message);

  bool done() const { return state_ == state::done; }

 private:
  enum class state {
    initial,                // Constructed; client-first not produced yet.
    awaiting_server_first,  // client-first returned; waiting for AuthenticationSASLContinue.
    awaiting_server_final,  // client-final returned; waiting for AuthenticationSASLFinal.
    done,                   // Server signature verified.
    failed,                 // An error was returned; the exchange is over.
  };

  std::error_code fail(errc e);

  std::string password_;
  std::string client_nonce_;
  std::string user_;
  state state_ = state::initial;
  std::string client_first_bare_;
  scram_key expected_server_signature_{};
};

}  // namespace sluice::protocol
