#pragma once

#include <cstdint>

#include "protocol/message_types.hpp"

namespace sluice::protocol {

// Per-type caps on the length field of client messages, the ones PostgreSQL 15 itself enforces
// (SocketBackend in src/backend/tcop/postgres.c). Checking them from the 5-byte header, before
// buffering the body, keeps a garbage length from making us allocate a gigabyte.

// PQ_SMALL_MESSAGE_LIMIT: messages that carry at most a name or two.
inline constexpr std::uint32_t small_message_limit = 10000;
// PQ_LARGE_MESSAGE_LIMIT (MaxAllocSize - 1): messages that carry SQL text or parameter values.
inline constexpr std::uint32_t large_message_limit = 0x3fffffff - 1;
// PG_MAX_AUTH_TOKEN_LENGTH: password and SASL messages during authentication.
inline constexpr std::uint32_t auth_message_limit = 65535;

// The cap PostgreSQL would apply to a client message of this type. Unknown types get the small
// cap: PostgreSQL rejects them anyway, so there is no reason to buffer much of one. Use as
//   peek_header(in, in.empty() ? small_message_limit : frontend_length_limit(in[0]))
constexpr std::uint32_t frontend_length_limit(char type) noexcept {
  switch (type) {
    case frontend_type::query:
    case frontend_type::function_call:
    case frontend_type::bind:
    case frontend_type::parse:
    case frontend_type::copy_data:
      return large_message_limit;
    case frontend_type::password:
      return auth_message_limit;
    default:
      return small_message_limit;
  }
}

}  // namespace sluice::protocol
