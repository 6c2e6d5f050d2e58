#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

// Client -> server messages the proxy acts on or synthesizes. Decoders take the body (the bytes
// after the length, from frame_message) and return views into it: keep the buffer alive while a
// decoded value is in use. Builders append one complete message to `out`.
// https://www.postgresql.org/docs/15/protocol-message-formats.html

namespace sluice::protocol {

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PASSWORDMESSAGE
struct password_message {
  std::string_view password;  // Cleartext, or "md5" + 32 hex digits.
};
result<password_message> decode_password_message(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLINITIALRESPONSE
struct sasl_initial_response {
  std::string_view mechanism;  // e.g. "SCRAM-SHA-256".
  std::string_view data;       // client-first-message; empty when the length is -1.
};
result<sasl_initial_response> decode_sasl_initial_response(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-SASLRESPONSE
struct sasl_response {
  std::string_view data;  // The whole body: client-final-message.
};
result<sasl_response> decode_sasl_response(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-QUERY
struct query {
  std::string_view sql;
};
result<query> decode_query(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARSE
struct parse {
  std::string_view name;  // "" is the unnamed statement.
  std::string_view query;
  std::vector<std::uint32_t> param_types;  // OIDs; 0 leaves a type to the server.
};
result<parse> decode_parse(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BIND
// Only the two names are decoded: a proxy that renames statements rewrites the name and copies
// the formats and parameter values that follow verbatim, so it never needs to parse them.
struct bind {
  std::string_view portal;     // "" is the unnamed portal.
  std::string_view statement;  // "" is the unnamed statement.
  std::size_t params_offset;   // Offset in the body of the bytes after the statement name.
};
result<bind> decode_bind(std::span<const char> body);

// Describe and Close name their target with one byte.
namespace target_kind {
inline constexpr char statement = 'S';  // A prepared statement.
inline constexpr char portal = 'P';     // A portal.
}  // namespace target_kind

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DESCRIBE
struct describe {
  char kind;  // target_kind: 'S' or 'P'; anything else is errc::malformed.
  std::string_view name;
};
result<describe> decode_describe(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-EXECUTE
struct execute {
  std::string_view portal;
  std::int32_t max_rows;  // 0: no limit.
};
result<execute> decode_execute(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CLOSE
struct close {
  char kind;  // target_kind: 'S' or 'P'; anything else is errc::malformed.
  std::string_view name;
};
result<close> decode_close(std::span<const char> body);

// Builders.
void append_password_message(std::string& out, std::string_view password);
void append_sasl_initial_response(std::string& out, std::string_view mechanism,
                                  std::string_view data);
void append_sasl_response(std::string& out, std::string_view data);
void append_query(std::string& out, std::string_view sql);
void append_parse(std::string& out, std::string_view name, std::string_view query,
                  std::span<const std::uint32_t> param_types);
// A Bind for `statement`, followed verbatim by `rest`: the formats, parameter values and result
// formats, usually body.subspan(decoded.params_offset) of the client's Bind.
void append_bind_header(std::string& out, std::string_view portal, std::string_view statement,
                        std::span<const char> rest);
// The start of that same Bind, without `rest`: the caller sends the client's own bytes after
// it, so parameter values are never copied. `rest_size` goes into the length field.
void append_bind_prefix(std::string& out, std::string_view portal, std::string_view statement,
                        std::size_t rest_size);
void append_describe(std::string& out, char kind, std::string_view name);
void append_execute(std::string& out, std::string_view portal, std::int32_t max_rows);
void append_close(std::string& out, char kind, std::string_view name);
void append_sync(std::string& out);
void append_flush(std::string& out);
void append_terminate(std::string& out);

}  // namespace sluice::protocol
