#pragma once
// How a client's TLS connection is negotiated, decided as PostgreSQL 17 decides it.
//
// Flow: a client either sends SSLRequest and, after sluice's 'S', its ClientHello; or (libpq
// sslnegotiation=direct) its ClientHello at once, which the first byte tells apart from a
// startup packet. During the handshake the ALPN callback picks "postgresql" from the client's
// list; after it, a direct connection that negotiated no ALPN is refused, since only ALPN
// proves the client meant to speak PostgreSQL over it.
// https://www.postgresql.org/docs/17/protocol-flow.html#PROTOCOL-FLOW-SSL
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace sluice::protocol {

// The ALPN protocol PostgreSQL registered (IANA), RFC 7301.
inline constexpr std::string_view postgresql_alpn = "postgresql";

// A TLS record of type handshake (RFC 8446 section 5.1) starts with 0x16; a startup packet
// starts with its length's high byte, 0 for every length sluice accepts.
inline constexpr unsigned char tls_handshake_record = 0x16;
inline bool starts_direct_tls(unsigned char first_byte) {
  return first_byte == tls_handshake_record;
}

// How the client asked for TLS.
enum class tls_entry {
  ssl_request,  // SSLRequest, answered 'S'
  direct,       // ClientHello as the first bytes (PostgreSQL 17)
};

// What the ALPN select callback answers.
enum class alpn_choice {
  selected,    // "postgresql" is in the client's list: `protocol` views it
  no_overlap,  // the client offered others only: a fatal no_application_protocol alert
  malformed,   // the list is not a sequence of length-prefixed names: also fatal
};
struct alpn_selection {
  alpn_choice choice = alpn_choice::malformed;
  std::span<const unsigned char> protocol;  // within the client's list, when selected
};

// `client_list` is the ALPN extension's protocol_name_list (RFC 7301 section 3.1): each name
// preceded by its one-byte length.
alpn_selection choose_alpn(std::span<const unsigned char> client_list);

// After the handshake: whether the connection may go on, given the ALPN protocol negotiated
// (nullopt when the client sent no ALPN). PostgreSQL's be_tls_open_server and
// ProcessSSLStartup: any protocol but "postgresql" is refused; direct TLS needs it.
bool alpn_acceptable(tls_entry entry, std::optional<std::string_view> negotiated);

}  // namespace sluice::protocol
