#include "proxy/client_tls.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/config/tls_protocols.hpp"
#include "proxy/tls_end_point.hpp"

namespace sluice::proxy {
namespace {

// OpenSSL's error queue, drained into one line.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void refuse(std::string_view what) {
  throw std::runtime_error(fmt::format("listen.tls: {}: {}", what, openssl_errors()));
}

// OpenSSL's ALPN select callback: "postgresql" or a fatal no_application_protocol alert, as
// PostgreSQL's alpn_cb. A client that sends no ALPN never gets here.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                unsigned int in_length, void*) {
  const auto chosen = protocol::choose_alpn({in, in_length});
  if (chosen.choice != protocol::alpn_choice::selected) return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen.protocol.data();
  *out_length = static_cast<unsigned char>(chosen.protocol.size());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

client_tls::client_tls(const config::client_tls_settings& settings)
    : settings_(settings), context_(asio::ssl::context::tls_server) {
  SSL_CTX* ctx = context_.native_handle();
  const auto versions = config::parse_tls_protocols(settings.protocols);
  if (!versions) throw std::runtime_error("listen.tls.protocols: not a list of TLS versions");
  if (!SSL_CTX_set_min_proto_version(ctx, versions->min) ||
      !SSL_CTX_set_max_proto_version(ctx, versions->max))
    refuse("protocols");
  if (!SSL_CTX_set_cipher_list(ctx, settings.ciphers.c_str())) refuse("ciphers");
  if (!settings.tls13_ciphers.empty() &&
      !SSL_CTX_set_ciphersuites(ctx, settings.tls13_ciphers.c_str()))
    refuse("tls13_ciphers");
  // As PostgreSQL: no compression (CRIME), the server's cipher order, no renegotiation, and
  // no session resumption (a pooler's clients reconnect rarely; it keeps no ticket keys).
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.cert_file.c_str()) != 1)
    refuse("cert_file " + settings.cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    refuse("key_file " + settings.key_file);
  if (SSL_CTX_check_private_key(ctx) != 1)
    refuse("key_file " + settings.key_file + " does not match cert_file");
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, settings.ca_file.c_str(), nullptr) != 1)
      refuse("ca_file " + settings.ca_file);
    // The CA names go in the CertificateRequest, so a client picks the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str());
    if (names == nullptr) refuse("ca_file " + settings.ca_file);
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  if (settings.verify != config::client_cert_verify::none)
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  end_point_ = tls_server_end_point(SSL_CTX_get0_certificate(ctx));
}

awaitable<std::optional<unsigned char>> peek_first_byte(stream_socket& socket) {
  for (;;) {
    auto [ec] = co_await socket.async_wait(stream_socket::wait_read, use_nothrow);
    if (ec) co_return std::nullopt;
    unsigned char first = 0;
    const auto n = ::recv(socket.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 1) co_return first;
    if (n == 0) co_return std::nullopt;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) co_return std::nullopt;
  }
}

awaitable<tls_accepted> accept_tls(client_transport& client, client_tls& tls,
                                   protocol::tls_entry entry) {
  tls_accepted out;
  // A half-finished handshake must not hold the connection for the whole login timeout.
  asio::steady_timer deadline(client.get_executor(), tls.settings().handshake_timeout);
  bool timed_out = false;
  deadline.async_wait([&client, &timed_out](error_code ec) {
    if (ec) return;
    timed_out = true;
    error_code ignored;
    client.cancel(ignored);
  });
  const auto ec = co_await client.start_tls(tls.context());
  deadline.cancel();
  if (timed_out) {
    out.problem = "TLS handshake timed out";
    co_return out;
  }
  if (ec) {
    out.problem = "TLS handshake failed: " + ec.message();
    co_return out;
  }
  const unsigned char* selected = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(client.tls()->native_handle(), &selected, &length);
  std::optional<std::string_view> negotiated;
  if (selected != nullptr)
    negotiated = std::string_view(reinterpret_cast<const char*>(selected), length);
  if (!protocol::alpn_acceptable(entry, negotiated)) {
    out.problem = entry == protocol::tls_entry::direct
                      ? "direct TLS connection without ALPN protocol negotiation"
                      : "TLS connection with an unexpected ALPN protocol";
    co_return out;
  }
  out.ok = true;
  co_return out;
}

bool certificate_matches_user(client_transport& client, const client_tls& tls,
                              std::string_view user) {
  if (tls.settings().verify != config::client_cert_verify::verify_full || !client.encrypted())
    return true;
  X509* peer = SSL_get0_peer_certificate(client.tls()->native_handle());
  if (peer == nullptr) return false;
  char common_name[256];
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                               common_name, sizeof(common_name));
  // A CN with an embedded NUL or longer than the buffer never names a user.
  if (length < 0 || static_cast<std::size_t>(length) >= sizeof(common_name) ||
      std::string_view(common_name, static_cast<std::size_t>(length)).find('\0') !=
          std::string_view::npos)
    return false;
  return std::string_view(common_name, static_cast<std::size_t>(length)) == user;
}

}  // namespace sluice::proxy
