#pragma once

#include <system_error>

namespace sluice::protocol {

// Why a wire-protocol operation failed. One enum for the whole layer, so the session can map every
// protocol failure to a single SQLSTATE decision (08P01 protocol_violation, 28P01 auth failure...).
enum class errc {
  ok = 0,                // Not an error; lets a zero std::error_code mean success.
  need_more,             // Not enough bytes buffered yet; read more and retry, this is not fatal.
  message_too_long,      // The length field exceeds the cap the caller allows for this message.
  bad_length,            // The length field is below the minimum (4 typed, 8 for a startup packet).
  truncated,             // A fixed-size field or counted byte string runs past the end of the body.
  malformed,             // Structurally wrong: a string without its NUL, an unknown enum value,
                         // trailing garbage, bad base64, or a call in the wrong state.
  unsupported_protocol,  // A startup packet asks for a protocol major version other than 3.
  auth_failed,           // A SCRAM/MD5 proof or server signature did not verify.
  unsupported_mechanism,  // A SASL mechanism or SCRAM option (e.g. channel binding) we do not do.
};

const std::error_category& protocol_category() noexcept;

std::error_code make_error_code(errc e) noexcept;

}  // namespace sluice::protocol

template <>
struct std::is_error_code_enum<sluice::protocol::errc> : std::true_type {};
