#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "protocol/result.hpp"
#include "protocol/scram_verifier.hpp"

namespace sluice::protocol {

// sluice acting as the SCRAM-SHA-256 server: it authenticates a client against a stored verifier,
// as PostgreSQL's auth-scram.c does. No channel binding: the client's gs2 header must be "n,,"
// (client does not support it) or "y,," (client does, thinks we do not); "p=..." is
// errc::unsupported_mechanism, as is an authzid or a mandatory extension ("m=").
// https://www.postgresql.org/docs/15/sasl-authentication.html#SASL-SCRAM-SHA-256
//
// Flow:
//   awaiting_client_first --on_client_first--> awaiting_client_final  (returns server-first)
//   awaiting_client_final --on_client_final--> done                   (returns server-final)
//   any error, or a call out of order        --> failed (every later call: errc::malformed)
// The caller wraps the results in AuthenticationSASLContinue / AuthenticationSASLFinal, then sends
// AuthenticationOk. One exchange per fsm: there is no retry after a failure.
class scram_server_fsm {
 public:
  // An empty `server_nonce` draws 18 random bytes, base64-encoded, like PostgreSQL.
  explicit scram_server_fsm(scram_verifier v, std::string server_nonce = {});

  // client-first-message -> server-first-message "r=<nonce>,s=<salt>,i=<iterations>".
  result<std::string> on_client_first(std::string_view client_first_message);

  // client-final-message -> server-final-message "v=<ServerSignature>", or errc::auth_failed when
  // the proof does not match (wrong password); errc::malformed for a protocol violation such as a
  // changed nonce or channel-binding attribute.
  result<std::string> on_client_final(std::string_view client_final_message);

  bool done() const { return state_ == state::done; }

 private:
  enum class state {
    awaiting_client_first,  // Constructed; the SASLInitialResponse has not arrived yet.
    awaiting_client_final,  // server-first sent; waiting for the SASLResponse with the proof.
    done,                   // Proof verified; server-final returned.
    failed,                 // An error was returned; the exchange is over.
  };

  result<std::string> fail(errc e);

  scram_verifier verifier_;
  std::string server_nonce_;
  state state_ = state::awaiting_client_first;
  std::string gs2_header_;         // "n,," or "y,,", to check the final message's c= against.
  std::string client_first_bare_;  // Part of the AuthMessage.
  std::string server_first_;       // Part of the AuthMessage.
  std::string nonce_;              // Client nonce + server nonce.
};

}  // namespace sluice::protocol
