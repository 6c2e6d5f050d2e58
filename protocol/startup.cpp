#include "protocol/startup.hpp"

#include "protocol/byte_reader.hpp"
#include "protocol/message_writer.hpp"

namespace sluice::protocol {
namespace {

constexpr std::uint32_t major_version(std::uint32_t version) {
  return version >> 16;
}

// Int32(code) alone: SSLRequest and GSSENCRequest carry nothing else.
result<startup_packet> decode_bare_request(byte_reader& in, startup_kind kind, std::uint32_t code) {
  in.expect_end();
  if (in.failed()) return make_failure<startup_packet>(in.error());
  return {startup_packet{kind, code, {}, {}}};
}

result<startup_packet> decode_cancel(byte_reader& in) {
  cancel_request cancel{};
  cancel.process_id = in.read_int32();
  cancel.secret_key = in.read_int32();
  in.expect_end();
  if (in.failed()) return make_failure<startup_packet>(in.error());
  return {startup_packet{startup_kind::cancel_request, cancel_request_code, {}, cancel}};
}

// A list of String name, String value pairs ended by an empty name; PostgreSQL insists the
// terminator is the last byte.
result<startup_packet> decode_startup(byte_reader& in, std::uint32_t version) {
  startup_packet packet{startup_kind::startup, version, {}, {}};
  if (major_version(version) != 3) {
    return {std::move(packet), make_error_code(errc::unsupported_protocol)};
  }
  for (;;) {
    const std::string_view name = in.read_cstring();
    if (in.failed() || name.empty()) break;
    const std::string_view value = in.read_cstring();
    if (in.failed()) break;
    packet.parameters.emplace_back(name, value);
  }
  in.expect_end();
  if (in.failed()) return make_failure<startup_packet>(in.error());
  return {std::move(packet)};
}

}  // namespace

result<startup_packet> decode_startup_packet(std::span<const char> body) {
  byte_reader in(body);
  const std::uint32_t code = in.read_uint32();
  if (in.failed()) return make_failure<startup_packet>(in.error());
  switch (code) {
    case ssl_request_code:
      return decode_bare_request(in, startup_kind::ssl_request, code);
    case gssenc_request_code:
      return decode_bare_request(in, startup_kind::gssenc_request, code);
    case cancel_request_code:
      return decode_cancel(in);
    default:
      return decode_startup(in, code);
  }
}

void append_startup_message(std::string& out,
                            const std::vector<std::pair<std::string, std::string>>& params) {
  auto w = message_writer::untyped(out);
  w.uint32(protocol_3_0);
  for (const auto& [name, value] : params) w.cstring(name).cstring(value);
  w.byte('\0').finish();
}

void append_cancel_request(std::string& out, cancel_request cancel) {
  message_writer::untyped(out)
      .uint32(cancel_request_code)
      .int32(cancel.process_id)
      .int32(cancel.secret_key)
      .finish();
}

void append_ssl_request(std::string& out) {
  message_writer::untyped(out).uint32(ssl_request_code).finish();
}

void append_gssenc_request(std::string& out) {
  message_writer::untyped(out).uint32(gssenc_request_code).finish();
}

}  // namespace sluice::protocol
