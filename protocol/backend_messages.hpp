#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/result.hpp"

// Server -> client messages the proxy acts on or synthesizes. Decoders take the body (the bytes
// after the length, from frame_message) and return views into it: keep the buffer alive while a
// decoded value is in use. Builders append one complete message to `out`.
// https://www.postgresql.org/docs/15/protocol-message-formats.html

namespace sluice::protocol {

// The Int32 subtype of an Authentication ('R') message.
namespace auth_code {
inline constexpr std::int32_t ok = 0;              // AuthenticationOk: no more auth steps.
inline constexpr std::int32_t cleartext = 3;       // AuthenticationCleartextPassword.
inline constexpr std::int32_t md5 = 5;             // AuthenticationMD5Password: Byte4 salt.
inline constexpr std::int32_t sasl = 10;           // AuthenticationSASL: mechanism list.
inline constexpr std::int32_t sasl_continue = 11;  // AuthenticationSASLContinue: server-first.
inline constexpr std::int32_t sasl_final = 12;     // AuthenticationSASLFinal: server-final.
}  // namespace auth_code

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK
// and the Authentication* messages after it.
struct authentication {
  std::int32_t code;  // One of auth_code; other codes (GSS, SSPI...) are returned undecoded.
  // md5: the 4-byte salt; sasl: the mechanism list (see sasl_mechanisms);
  // sasl_continue/sasl_final: the SASL data; ok/cleartext: empty.
  std::span<const char> data;
};
// Checks the size of the known codes: ok/cleartext carry nothing, md5 exactly 4 bytes.
result<authentication> decode_authentication(std::span<const char> body);

// The mechanism names of an AuthenticationSASL list (String each, ended by an empty String). Stops
// at the terminator; an unterminated trailing name is dropped, never read past the data.
std::vector<std::string_view> sasl_mechanisms(std::span<const char> data);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERSTATUS
struct parameter_status {
  std::string_view name, value;
};
result<parameter_status> decode_parameter_status(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA
struct backend_key_data {
  std::int32_t process_id, secret_key;
};
result<backend_key_data> decode_backend_key_data(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY
namespace transaction_status {
inline constexpr char idle = 'I';            // Not in a transaction block.
inline constexpr char in_transaction = 'T';  // In a transaction block.
inline constexpr char failed = 'E';          // In a failed transaction block (until ROLLBACK).
}  // namespace transaction_status

struct ready_for_query {
  char status;  // One of transaction_status: 'I', 'T' or 'E'; anything else is errc::malformed.
};
result<ready_for_query> decode_ready_for_query(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ERRORRESPONSE
// and NoticeResponse; field codes: https://www.postgresql.org/docs/15/protocol-error-fields.html
struct error_response {
  std::vector<std::pair<char, std::string_view>> fields;  // In wire order.

  std::string_view field(char code) const;  // The first field with this code, "" if absent.
  std::string_view sqlstate() const { return field('C'); }
  std::string_view message() const { return field('M'); }
};
// Decodes ErrorResponse and NoticeResponse alike (they share the format).
result<error_response> decode_error_response(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE
struct command_complete {
  std::string_view tag;  // "SELECT 1", "INSERT 0 3", "DISCARD ALL"...
};
result<command_complete> decode_command_complete(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-DATAROW
// For the few rows sluice reads itself (internal queries, text format): one value per column,
// nullopt for NULL.
struct data_row {
  std::vector<std::optional<std::string_view>> values;
};
result<data_row> decode_data_row(std::span<const char> body);

// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NEGOTIATEPROTOCOLVERSION
struct negotiate_protocol_version {
  std::int32_t newest_minor;                  // Newest minor version of the requested major.
  std::vector<std::string_view> unsupported;  // "_pq_." options the server did not recognize.
};
result<negotiate_protocol_version> decode_negotiate_protocol_version(std::span<const char> body);

// Builders.
void append_authentication_ok(std::string& out);
void append_authentication_cleartext(std::string& out);
void append_authentication_md5(std::string& out, std::span<const char, 4> salt);
void append_authentication_sasl(std::string& out, std::span<const std::string_view> mechanisms);
void append_authentication_sasl_continue(std::string& out, std::string_view data);
void append_authentication_sasl_final(std::string& out, std::string_view data);
void append_parameter_status(std::string& out, std::string_view name, std::string_view value);
void append_backend_key_data(std::string& out, backend_key_data key);
void append_ready_for_query(std::string& out, char status);

// The fields of an ErrorResponse/NoticeResponse that sluice itself reports.
struct error_fields {
  std::string_view severity = "ERROR";  // ERROR, FATAL, PANIC, WARNING, NOTICE, DEBUG, INFO, LOG.
  std::string_view sqlstate;            // Five characters, e.g. "08P01".
  std::string_view message;
  std::string_view detail = {};  // Omitted when empty.
  std::string_view hint = {};    // Omitted when empty.
};
// Writes S, V (same as S: clients since 9.6 prefer the untranslated V), C, M, then D and H if set.
void append_error_response(std::string& out, const error_fields& fields);
void append_notice_response(std::string& out, const error_fields& fields);

void append_command_complete(std::string& out, std::string_view tag);
void append_parse_complete(std::string& out);
void append_bind_complete(std::string& out);
void append_close_complete(std::string& out);
void append_empty_query_response(std::string& out);
void append_no_data(std::string& out);
void append_portal_suspended(std::string& out);
// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-PARAMETERDESCRIPTION
void append_parameter_description(std::string& out, std::span<const std::uint32_t> type_oids);
void append_negotiate_protocol_version(std::string& out, std::int32_t newest_minor,
                                       std::span<const std::string_view> unsupported_options);

// RowDescription and DataRow, for result sets sluice answers itself (the admin console).
// https://www.postgresql.org/docs/15/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-ROWDESCRIPTION
struct column_description {
  std::string_view name;
  std::uint32_t type_oid = 25;  // text
  std::int16_t type_size = -1;  // -1: variable length.
  std::int32_t type_modifier = -1;
  std::uint32_t table_oid = 0;     // 0: not a table column.
  std::int16_t column_number = 0;  // 0: not a table column.
  std::int16_t format_code = 0;    // 0: text.
};
void append_row_description(std::string& out, std::span<const column_description> columns);
// A NULL column is std::nullopt (length -1), as opposed to an empty string.
void append_data_row(std::string& out, std::span<const std::optional<std::string_view>> values);

}  // namespace sluice::protocol
