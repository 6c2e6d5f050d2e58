#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "protocol/result.hpp"

namespace sluice::protocol {

// The untyped packets a client may open a connection with. Each starts with Int32(length) then an
// Int32 code that tells them apart; frame them with frame_startup_packet.
// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE
//
// Flow: SSLRequest/GSSENCRequest (answered with one byte 'S'/'G' or 'N', then optionally a TLS
// handshake) -> StartupMessage -> authentication; or a lone CancelRequest on a new connection.

inline constexpr std::uint32_t protocol_3_0 = 196608;           // (3 << 16) | 0
inline constexpr std::uint32_t ssl_request_code = 80877103;     // (1234 << 16) | 5679
inline constexpr std::uint32_t gssenc_request_code = 80877104;  // (1234 << 16) | 5680
inline constexpr std::uint32_t cancel_request_code = 80877102;  // (1234 << 16) | 5678

enum class startup_kind {
  startup,         // StartupMessage: protocol version plus name/value parameters.
  ssl_request,     // SSLRequest: the client asks to switch to TLS first.
  gssenc_request,  // GSSENCRequest: the client asks for GSSAPI encryption first.
  cancel_request,  // CancelRequest: cancel the query running on the backend with this key.
};

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST
struct cancel_request {
  std::int32_t process_id;
  std::int32_t secret_key;
};

struct startup_packet {
  startup_kind kind;
  std::uint32_t version;  // The protocol version, or the request code for the other kinds.
  // In wire order; "user", "database", "options", "application_name", GUCs and "_pq_." options.
  std::vector<std::pair<std::string, std::string>> parameters;
  cancel_request cancel;  // Only for startup_kind::cancel_request.
};

// Decodes the body of a startup-phase packet (the bytes after the length). For a StartupMessage
// any 3.x version is decoded, and the caller decides whether to accept the minor version (or
// answer NegotiateProtocolVersion). Any other major version fails with
// errc::unsupported_protocol, but the result still carries kind and version so the caller can
// report them.
result<startup_packet> decode_startup_packet(std::span<const char> body);

// StartupMessage, protocol 3.0.
void append_startup_message(std::string& out,
                            const std::vector<std::pair<std::string, std::string>>& params);
void append_cancel_request(std::string& out, cancel_request cancel);
void append_ssl_request(std::string& out);
void append_gssenc_request(std::string& out);

}  // namespace sluice::protocol
