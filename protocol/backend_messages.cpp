#include "protocol/backend_messages.hpp"

#include "protocol/byte_reader.hpp"
#include "protocol/message_types.hpp"
#include "protocol/message_writer.hpp"

namespace sluice::protocol {
namespace {

template <class T>
result<T> finish(byte_reader& in, T value) {
  in.expect_end();
  if (in.failed()) return make_failure<T>(in.error());
  return {std::move(value)};
}

// A list of Strings ended by an empty String, which must be the last byte.
void read_name_list(byte_reader& in, std::vector<std::string_view>* names) {
  for (;;) {
    const std::string_view name = in.read_cstring();
    if (in.failed() || name.empty()) return;
    if (names != nullptr) names->push_back(name);
  }
}

void append_empty_message(std::string& out, char type) {
  message_writer(out, type).finish();
}

void append_error_or_notice(std::string& out, char type, const error_fields& fields) {
  message_writer w(out, type);
  w.byte('S').cstring(fields.severity);
  w.byte('V').cstring(fields.severity);
  w.byte('C').cstring(fields.sqlstate);
  w.byte('M').cstring(fields.message);
  if (!fields.detail.empty()) w.byte('D').cstring(fields.detail);
  if (!fields.hint.empty()) w.byte('H').cstring(fields.hint);
  w.byte('\0').finish();
}

}  // namespace

result<authentication> decode_authentication(std::span<const char> body) {
  byte_reader in(body);
  authentication auth{in.read_int32(), {}};
  if (in.failed()) return make_failure<authentication>(in.error());
  switch (auth.code) {
    case auth_code::ok:
    case auth_code::cleartext:
      break;
    case auth_code::md5:
      auth.data = in.read_bytes(4);
      break;
    case auth_code::sasl: {
      byte_reader list(in.read_rest());
      read_name_list(list, nullptr);
      list.expect_end();
      if (list.failed()) return make_failure<authentication>(list.error());
      auth.data = body.subspan(4);
      break;
    }
    default:
      // SASL data and the codes we do not handle are opaque to this layer.
      auth.data = in.read_rest();
      break;
  }
  return finish(in, auth);
}

std::vector<std::string_view> sasl_mechanisms(std::span<const char> data) {
  std::vector<std::string_view> names;
  byte_reader in(data);
  read_name_list(in, &names);
  return names;
}

result<parameter_status> decode_parameter_status(std::span<const char> body) {
  byte_reader in(body);
  parameter_status status;
  status.name = in.read_cstring();
  status.value = in.read_cstring();
  return finish(in, status);
}

result<backend_key_data> decode_backend_key_data(std::span<const char> body) {
  byte_reader in(body);
  backend_key_data key;
  key.process_id = in.read_int32();
  key.secret_key = in.read_int32();
  return finish(in, key);
}

result<ready_for_query> decode_ready_for_query(std::span<const char> body) {
  byte_reader in(body);
  const ready_for_query ready{in.read_byte()};
  if (!in.failed() && ready.status != transaction_status::idle &&
      ready.status != transaction_status::in_transaction &&
      ready.status != transaction_status::failed) {
    in.fail(errc::malformed);
  }
  return finish(in, ready);
}

std::string_view error_response::field(char code) const {
  for (const auto& [field_code, value] : fields) {
    if (field_code == code) return value;
  }
  return {};
}

// Byte1(code) String(value) pairs, ended by a zero code byte that must be the last byte.
result<error_response> decode_error_response(std::span<const char> body) {
  byte_reader in(body);
  error_response response;
  for (;;) {
    const char code = in.read_byte();
    if (in.failed() || code == '\0') break;
    const std::string_view value = in.read_cstring();
    if (in.failed()) break;
    response.fields.emplace_back(code, value);
  }
  return finish(in, std::move(response));
}

result<command_complete> decode_command_complete(std::span<const char> body) {
  byte_reader in(body);
  const command_complete complete{in.read_cstring()};
  return finish(in, complete);
}

result<data_row> decode_data_row(std::span<const char> body) {
  byte_reader in(body);
  data_row row;
  const std::int16_t count = in.read_int16();
  if (count < 0) in.fail(errc::malformed);
  for (std::int16_t i = 0; i < count && !in.failed(); ++i) {
    const std::int32_t length = in.read_int32();
    if (length == -1) {
      row.values.emplace_back(std::nullopt);
    } else if (length < 0) {
      in.fail(errc::malformed);
    } else {
      const auto bytes = in.read_bytes(static_cast<std::size_t>(length));
      row.values.emplace_back(std::string_view(bytes.data(), bytes.size()));
    }
  }
  return finish(in, row);
}

result<negotiate_protocol_version> decode_negotiate_protocol_version(std::span<const char> body) {
  byte_reader in(body);
  negotiate_protocol_version negotiate;
  negotiate.newest_minor = in.read_int32();
  const std::int32_t count = in.read_int32();
  if (count < 0) in.fail(errc::malformed);
  // No reserve(count): the count is untrusted, and a short body fails long before it is reached.
  for (std::int32_t i = 0; i < count && !in.failed(); ++i) {
    negotiate.unsupported.push_back(in.read_cstring());
  }
  return finish(in, std::move(negotiate));
}

void append_authentication_ok(std::string& out) {
  message_writer(out, backend_type::authentication).int32(auth_code::ok).finish();
}

void append_authentication_cleartext(std::string& out) {
  message_writer(out, backend_type::authentication).int32(auth_code::cleartext).finish();
}

void append_authentication_md5(std::string& out, std::span<const char, 4> salt) {
  message_writer(out, backend_type::authentication).int32(auth_code::md5).bytes(salt).finish();
}

void append_authentication_sasl(std::string& out, std::span<const std::string_view> mechanisms) {
  message_writer w(out, backend_type::authentication);
  w.int32(auth_code::sasl);
  for (const std::string_view mechanism : mechanisms) w.cstring(mechanism);
  w.byte('\0').finish();
}

void append_authentication_sasl_continue(std::string& out, std::string_view data) {
  message_writer(out, backend_type::authentication)
      .int32(auth_code::sasl_continue)
      .bytes(data)
      .finish();
}

void append_authentication_sasl_final(std::string& out, std::string_view data) {
  message_writer(out, backend_type::authentication)
      .int32(auth_code::sasl_final)
      .bytes(data)
      .finish();
}

void append_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  message_writer(out, backend_type::parameter_status).cstring(name).cstring(value).finish();
}

void append_backend_key_data(std::string& out, backend_key_data key) {
  message_writer(out, backend_type::backend_key_data)
      .int32(key.process_id)
      .int32(key.secret_key)
      .finish();
}

void append_ready_for_query(std::string& out, char status) {
  message_writer(out, backend_type::ready_for_query).byte(status).finish();
}

void append_error_response(std::string& out, const error_fields& fields) {
  append_error_or_notice(out, backend_type::error_response, fields);
}

void append_notice_response(std::string& out, const error_fields& fields) {
  append_error_or_notice(out, backend_type::notice_response, fields);
}

void append_command_complete(std::string& out, std::string_view tag) {
  message_writer(out, backend_type::command_complete).cstring(tag).finish();
}

void append_parse_complete(std::string& out) {
  append_empty_message(out, backend_type::parse_complete);
}
void append_bind_complete(std::string& out) {
  append_empty_message(out, backend_type::bind_complete);
}
void append_close_complete(std::string& out) {
  append_empty_message(out, backend_type::close_complete);
}
void append_empty_query_response(std::string& out) {
  append_empty_message(out, backend_type::empty_query_response);
}
void append_no_data(std::string& out) {
  append_empty_message(out, backend_type::no_data);
}

void append_portal_suspended(std::string& out) {
  append_empty_message(out, backend_type::portal_suspended);
}

void append_parameter_description(std::string& out, std::span<const std::uint32_t> type_oids) {
  message_writer w(out, backend_type::parameter_description);
  w.int16(static_cast<std::int16_t>(type_oids.size()));
  for (auto oid : type_oids) w.uint32(oid);
  w.finish();
}

void append_negotiate_protocol_version(std::string& out, std::int32_t newest_minor,
                                       std::span<const std::string_view> unsupported_options) {
  message_writer w(out, backend_type::negotiate_protocol_version);
  w.int32(newest_minor).int32(static_cast<std::int32_t>(unsupported_options.size()));
  for (const std::string_view option : unsupported_options) w.cstring(option);
  w.finish();
}

void append_row_description(std::string& out, std::span<const column_description> columns) {
  message_writer w(out, backend_type::row_description);
  w.int16(static_cast<std::int16_t>(columns.size()));
  for (const column_description& column : columns) {
    w.cstring(column.name)
        .uint32(column.table_oid)
        .int16(column.column_number)
        .uint32(column.type_oid)
        .int16(column.type_size)
        .int32(column.type_modifier)
        .int16(column.format_code);
  }
  w.finish();
}

void append_data_row(std::string& out, std::span<const std::optional<std::string_view>> values) {
  message_writer w(out, backend_type::data_row);
  w.int16(static_cast<std::int16_t>(values.size()));
  for (const auto& value : values) {
    if (!value) {
      w.int32(-1);
      continue;
    }
    w.int32(static_cast<std::int32_t>(value->size())).bytes(*value);
  }
  w.finish();
}

}  // namespace sluice::protocol
