#pragma once
// TLS towards a server as libpq decides it from a url's sslmode, sslrootcert and
// channel_binding: what the first connection attempt does, what the server's answer to the
// SSLRequest leads to, what is verified, and which SCRAM mechanism to pick. Pure decisions, for
// the server login (server_login_fsm's SSLRequest step) and its driver to carry out.
// https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION
//
// Flow: plan_server_tls(mode, rootcert) → [first_attempt_tls: send SSLRequest →
// on_ssl_answer('S' | 'N' | other)] → handshake with verify_chain / verify_host_name → startup
// → AuthenticationSASL → choose_scram(mechanisms, tls, channel_binding).
#include <optional>
#include <span>
#include <string_view>

namespace sluice::protocol {

// libpq's sslmode values.
enum class sslmode {
  disable,      // plain text only
  allow,        // plain text first; TLS if the server refuses that
  prefer,       // TLS first; plain text if the server does not do TLS (libpq's default)
  require,      // TLS, certificate unchecked (but see plan_server_tls: a root CA checks it)
  verify_ca,    // TLS, the chain checked against sslrootcert
  verify_full,  // and the host name against the certificate
};
std::optional<sslmode> parse_sslmode(std::string_view text);

struct server_tls_plan {
  bool first_attempt_tls = false;  // the first connection sends an SSLRequest
  bool fallback = false;           // if that attempt fails, one more the other way (allow/prefer)
  bool tls_required = false;       // 'N' (or a failed handshake) ends the login
  bool verify_chain = false;       // the server certificate must chain to sslrootcert
  bool verify_host_name = false;   // ... and name the host (SAN, else CN)
};

// `root_cert_given`: sslrootcert is set. As libpq: with a root certificate, require checks the
// chain like verify-ca.
server_tls_plan plan_server_tls(sslmode mode, bool root_cert_given);

// The server's one-byte answer to SSLRequest.
enum class ssl_answer_action {
  handshake,    // 'S': start the TLS handshake (nothing else may be buffered)
  go_on_plain,  // 'N' and TLS is not required: send the StartupMessage in plain text
  fail,         // 'N' with TLS required ("server does not support SSL"), or anything else
};
ssl_answer_action on_ssl_answer(const server_tls_plan& plan, char answer);

// libpq's channel_binding values.
enum class channel_binding_mode {
  disable,  // never SCRAM-SHA-256-PLUS
  prefer,   // -PLUS when on TLS and the server offers it (libpq's default)
  require,  // -PLUS or fail
};
std::optional<channel_binding_mode> parse_channel_binding(std::string_view text);

enum class scram_choice {
  plus,   // SCRAM-SHA-256-PLUS with tls-server-end-point
  plain,  // SCRAM-SHA-256; over TLS the client-first says "y" (could bind, server did not)
  fail,   // channel_binding=require without -PLUS, or no SCRAM mechanism at all
};
// `offered`: the mechanisms of AuthenticationSASL. `binding_available`: on TLS with the
// server certificate's hash at hand.
scram_choice choose_scram(std::span<const std::string_view> offered, bool binding_available,
                          channel_binding_mode mode);

}  // namespace sluice::protocol
