#pragma once
// TLS towards clients (listen.tls): the OpenSSL context built once at startup, and the steps a
// session takes to move a connection onto it.
//
// Flow (driven by client_session::read_startup): [direct TLS: peek_first_byte sees a
// ClientHello] or [SSLRequest answered 'S'] → accept_tls: handshake under handshake_timeout,
// ALPN checked (protocol/tls_negotiation) → the startup packet, now encrypted → the client
// certificate's CN checked against the user (verify-full) → SCRAM may use channel binding with
// end_point().
//
// Threads: built before the workers start and read-only after; OpenSSL allows one SSL_CTX to
// serve connections on every thread, each connection having its own SSL object.
#include <optional>
#include <string>

#include <boost/asio/ssl.hpp>

#include "protocol/tls_negotiation.hpp"
#include "proxy/asio.hpp"
#include "proxy/client_transport.hpp"
#include "proxy/config/settings.hpp"

namespace sluice::proxy {

class client_tls {
 public:
  // Reads the certificate, key and CA files. Throws std::runtime_error saying which file and
  // what OpenSSL found wrong with it.
  explicit client_tls(const config::client_tls_settings& settings);

  asio::ssl::context& context() { return context_; }
  const config::client_tls_settings& settings() const { return settings_; }
  // tls-server-end-point channel-binding data for sluice's certificate (see tls_end_point);
  // nullopt when it has none (then SCRAM-SHA-256-PLUS is not offered).
  const std::optional<std::string>& end_point() const { return end_point_; }

 private:
  config::client_tls_settings settings_;
  asio::ssl::context context_;
  std::optional<std::string> end_point_;
};

// The first byte a new connection sends, without taking it from the socket (MSG_PEEK): a
// ClientHello must reach OpenSSL whole. nullopt when the connection failed or closed first.
awaitable<std::optional<unsigned char>> peek_first_byte(stream_socket& socket);

struct tls_accepted {
  bool ok = false;
  std::string problem;  // for the log when !ok: the handshake's or ALPN's failure
};

// The server side of the handshake on `client`, bounded by handshake_timeout, then the ALPN
// check for how the client asked (`entry`). A failed handshake leaves the connection to close.
awaitable<tls_accepted> accept_tls(client_transport& client, client_tls& tls,
                                   protocol::tls_entry entry);

// verify-full: whether the client's certificate names `user` as its CN (PostgreSQL's
// clientcert=verify-full); true when verify is not verify-full or the connection is plain.
bool certificate_matches_user(client_transport& client, const client_tls& tls,
                              std::string_view user);

}  // namespace sluice::proxy
