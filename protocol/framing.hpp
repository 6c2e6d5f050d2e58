#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace sluice::protocol {

// Framing finds message boundaries in a byte stream without decoding bodies: the relay forwards
// most messages by byte count and only decodes the few it acts on.
// https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
//
// Flow (per message): peek_header until complete -> check/act on type and length -> frame_message
// until complete -> consume message.wire.size() bytes -> repeat on the rest of the buffer.

// PostgreSQL's MAX_STARTUP_PACKET_LENGTH: the length field (which counts itself) of an untyped
// startup-phase packet may not exceed it.
inline constexpr std::size_t max_startup_packet_length = 10000;

// Byte1(type) Int32(length).
struct message_header {
  char type;
  std::uint32_t length;  // The length field as sent: counts itself, not the type byte.

  // The whole message on the wire: the type byte plus `length`.
  std::size_t wire_size() const { return 1 + std::size_t{length}; }
};

enum class frame_status {
  complete,   // A whole header (or message) is at the front of the input.
  need_more,  // The input is a strict prefix of a valid header (or message); `error` is empty.
  error,      // The length field is invalid; `error` says why. The stream cannot be resynced.
};

struct header_result {
  frame_status status;
  message_header header;  // Valid only when status == complete.
  std::error_code error;  // Set only when status == error.
};

// Reads the 5-byte header of a typed message. need_more until 5 bytes are present; error
// (errc::bad_length) if length < 4 and (errc::message_too_long) if length > max_length, both
// decided before any body byte is buffered.
header_result peek_header(std::span<const char> in, std::uint32_t max_length);

struct message_view {
  char type;                   // The type byte; '\0' for an untyped startup packet.
  std::span<const char> body;  // The bytes after the length field.
  std::span<const char> wire;  // The whole message, type and length included: forward this.
};

struct frame_result {
  frame_status status;
  message_view message;   // Valid only when status == complete; views into the input.
  std::error_code error;  // Set only when status == error.
};

// A typed message, complete only when all of it is in `in`. Length errors as peek_header.
frame_result frame_message(std::span<const char> in, std::uint32_t max_length);

// An untyped startup-phase packet: Int32(length) then the body, with no type byte. Lengths below
// 8 (length plus the request code) are errc::bad_length; above max_startup_packet_length
// errc::message_too_long. The returned type is '\0'.
frame_result frame_startup_packet(std::span<const char> in);

}  // namespace sluice::protocol
