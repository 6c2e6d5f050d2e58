#include "protocol/frontend_messages.hpp"

#include <utility>

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

std::string_view as_string_view(std::span<const char> bytes) {
  return {bytes.data(), bytes.size()};
}

char read_target_kind(byte_reader& in) {
  const char kind = in.read_byte();
  if (!in.failed() && kind != target_kind::statement && kind != target_kind::portal) {
    in.fail(errc::malformed);
  }
  return kind;
}

}  // namespace

result<password_message> decode_password_message(std::span<const char> body) {
  byte_reader in(body);
  const password_message message{in.read_cstring()};
  return finish(in, message);
}

// String(mechanism) Int32(length of data, -1 for none) Byten(data).
result<sasl_initial_response> decode_sasl_initial_response(std::span<const char> body) {
  byte_reader in(body);
  sasl_initial_response response{in.read_cstring(), {}};
  const std::int32_t length = in.read_int32();
  if (in.failed()) return make_failure<sasl_initial_response>(in.error());
  if (length < -1) in.fail(errc::malformed);
  if (length > 0) response.data = as_string_view(in.read_bytes(static_cast<std::size_t>(length)));
  return finish(in, response);
}

result<sasl_response> decode_sasl_response(std::span<const char> body) {
  return {sasl_response{as_string_view(body)}};
}

result<query> decode_query(std::span<const char> body) {
  byte_reader in(body);
  const query message{in.read_cstring()};
  return finish(in, message);
}

// String(name) String(query) Int16(count) Int32[count](type OIDs).
result<parse> decode_parse(std::span<const char> body) {
  byte_reader in(body);
  parse message;
  message.name = in.read_cstring();
  message.query = in.read_cstring();
  // PostgreSQL reads the count as unsigned 16 bits (pq_getmsgint), so it cannot be negative.
  const std::uint16_t count = in.read_uint16();
  // The OIDs must all be in the body; checking first also bounds the allocation by the body size.
  if (!in.failed() && in.remaining() < std::size_t{count} * 4) in.fail(errc::truncated);
  if (!in.failed()) {
    message.param_types.reserve(count);
    for (std::uint16_t i = 0; i < count; ++i) message.param_types.push_back(in.read_uint32());
  }
  return finish(in, std::move(message));
}

result<bind> decode_bind(std::span<const char> body) {
  byte_reader in(body);
  bind message{};
  message.portal = in.read_cstring();
  message.statement = in.read_cstring();
  message.params_offset = in.offset();
  if (in.failed()) return make_failure<bind>(in.error());
  return {message};
}

result<describe> decode_describe(std::span<const char> body) {
  byte_reader in(body);
  describe message{};
  message.kind = read_target_kind(in);
  message.name = in.read_cstring();
  return finish(in, message);
}

result<execute> decode_execute(std::span<const char> body) {
  byte_reader in(body);
  execute message{};
  message.portal = in.read_cstring();
  message.max_rows = in.read_int32();
  return finish(in, message);
}

result<close> decode_close(std::span<const char> body) {
  byte_reader in(body);
  close message{};
  message.kind = read_target_kind(in);
  message.name = in.read_cstring();
  return finish(in, message);
}

void append_password_message(std::string& out, std::string_view password) {
  message_writer(out, frontend_type::password).cstring(password).finish();
}

void append_sasl_initial_response(std::string& out, std::string_view mechanism,
                                  std::string_view data) {
  message_writer(out, frontend_type::password)
      .cstring(mechanism)
      .int32(static_cast<std::int32_t>(data.size()))
      .bytes(data)
      .finish();
}

void append_sasl_response(std::string& out, std::string_view data) {
  message_writer(out, frontend_type::password).bytes(data).finish();
}

void append_query(std::string& out, std::string_view sql) {
  message_writer(out, frontend_type::query).cstring(sql).finish();
}

void append_parse(std::string& out, std::string_view name, std::string_view query,
                  std::span<const std::uint32_t> param_types) {
  message_writer w(out, frontend_type::parse);
  w.cstring(name).cstring(query).uint16(static_cast<std::uint16_t>(param_types.size()));
  for (const std::uint32_t oid : param_types) w.uint32(oid);
  w.finish();
}

void append_bind_header(std::string& out, std::string_view portal, std::string_view statement,
                        std::span<const char> rest) {
  message_writer(out, frontend_type::bind).cstring(portal).cstring(statement).bytes(rest).finish();
}

void append_bind_prefix(std::string& out, std::string_view portal, std::string_view statement,
                        std::size_t rest_size) {
  const auto length =
      static_cast<std::uint32_t>(4 + portal.size() + 1 + statement.size() + 1 + rest_size);
  out.push_back(frontend_type::bind);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(length >> shift));
  out.append(portal);
  out.push_back('\0');
  out.append(statement);
  out.push_back('\0');
}

void append_describe(std::string& out, char kind, std::string_view name) {
  message_writer(out, frontend_type::describe).byte(kind).cstring(name).finish();
}

void append_execute(std::string& out, std::string_view portal, std::int32_t max_rows) {
  message_writer(out, frontend_type::execute).cstring(portal).int32(max_rows).finish();
}

void append_close(std::string& out, char kind, std::string_view name) {
  message_writer(out, frontend_type::close).byte(kind).cstring(name).finish();
}

void append_sync(std::string& out) {
  message_writer(out, frontend_type::sync).finish();
}
void append_flush(std::string& out) {
  message_writer(out, frontend_type::flush).finish();
}
void append_terminate(std::string& out) {
  message_writer(out, frontend_type::terminate).finish();
}

}  // namespace sluice::protocol
