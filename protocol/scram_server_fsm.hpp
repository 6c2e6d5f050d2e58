#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "protocol/result.hpp"
#include "protocol/scram_verifier.hpp"

namespace sluice::protocol {

// Channel binding over TLS (SCRAM-SHA-256-PLUS, RFC 5802 section 6): what the server offers and
// what the client picked. Only tls-server-end-point (RFC 5929 section 4.1), as PostgreSQL.
struct scram_channel_binding {
  std::string tls_server_end_point;  // hash of the server's certificate (see tls_end_point)
  bool plus_selected = false;        // the client chose SCRAM-SHA-256-PLUS
};

// sluice acting as the SCRAM-SHA-256 server: it authenticates a client against a stored verifier,
// as PostgreSQL's auth-scram.c does. The gs2 header is checked as read_client_first_message()
// does:
//   without channel binding offered (plain connection): "n,," or "y,,"; "p=" is
//     errc::unsupported_mechanism.
//   with it offered (TLS): the client chose -PLUS: "p=tls-server-end-point,," only (another
//     type is errc::unsupported_mechanism); it chose plain SCRAM-SHA-256: "n,," only ("y,," is
//     a downgrade, "p=" a mismatch: both malformed).
// An authzid or a mandatory extension ("m=") is errc::unsupported_mechanism.
// The client-final's c= must be base64(gs2 header + binding data), so a proxy in between that
// terminates TLS with another certificate makes the proof fail.
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
  // Without `binding`, channel binding is not offered.
  explicit scram_server_fsm(scram_verifier v, std::string server_nonce = {},
                            std::optional<scram_channel_binding> binding = std::nullopt);

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
  std::optional<scram_channel_binding> binding_;  // offered over TLS
  std::string gs2_header_;         // e.g. "n,,": the final message's c= is checked against it
  std::string binding_data_;       // appended to gs2_header_ in c=: empty unless "p=" was used
  std::string client_first_bare_;  // Part of the AuthMessage.
  std::string server_first_;       // Part of the AuthMessage.
  std::string nonce_;              // Client nonce + server nonce.
};

}  // namespace sluice::protocol
