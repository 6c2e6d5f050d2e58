// Fuzz target: a server's byte stream, framed and decoded the way the daemon reads its servers
// (protocol/framing, protocol/backend_messages): during login (Authentication*, ParameterStatus,
// BackendKeyData, NegotiateProtocolVersion, ErrorResponse) and while relaying (ReadyForQuery,
// CommandComplete, ErrorResponse and NoticeResponse).
//
// Checked on every input, besides no crash and no sanitizer report: framing as in
// fuzz_frontend_messages; every decoded view points into its body; a message that decodes is
// rebuilt by its builder into the same bytes (or, where the format allows two encodings, decodes
// again to the same value).
#include <cstdint>
#include <string>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace sluice::fuzz {
namespace {

// Servers are trusted more than clients, but a garbage length must still not allocate the heap:
// the relay caps server messages too (pool.max_message_size; this is its default order).
constexpr std::uint32_t max_message = 1 << 20;

bool same_bytes(std::span<const char> a, const std::string& b) {
  return std::string_view(a.data(), a.size()) == b;
}

void decode_authentication(const protocol::message_view& m) {
  const auto auth = protocol::decode_authentication(m.body);
  if (!auth) return;
  SLUICE_FUZZ_CHECK(within(m.body, auth->data));
  std::string again;
  switch (auth->code) {
    case protocol::auth_code::ok:
      SLUICE_FUZZ_CHECK(auth->data.empty());
      protocol::append_authentication_ok(again);
      break;
    case protocol::auth_code::cleartext:
      SLUICE_FUZZ_CHECK(auth->data.empty());
      protocol::append_authentication_cleartext(again);
      break;
    case protocol::auth_code::md5:
      SLUICE_FUZZ_CHECK(auth->data.size() == 4);
      protocol::append_authentication_md5(again, auth->data.first<4>());
      break;
    case protocol::auth_code::sasl: {
      const auto names = protocol::sasl_mechanisms(auth->data);
      for (const auto name : names) {
        SLUICE_FUZZ_CHECK(within(auth->data, name));
        SLUICE_FUZZ_CHECK(!name.empty());
      }
      protocol::append_authentication_sasl(again, names);
      break;
    }
    case protocol::auth_code::sasl_continue:
      protocol::append_authentication_sasl_continue(
          again, std::string_view(auth->data.data(), auth->data.size()));
      break;
    case protocol::auth_code::sasl_final:
      protocol::append_authentication_sasl_final(
          again, std::string_view(auth->data.data(), auth->data.size()));
      break;
    default:
      return;  // GSS, SSPI...: the daemon refuses them without looking inside
  }
  SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
}

void decode(const protocol::message_view& m) {
  const auto body = m.body;
  std::string again;
  switch (m.type) {
    case 'R':
      return decode_authentication(m);
    case 'S': {
      const auto status = protocol::decode_parameter_status(body);
      if (!status) return;
      SLUICE_FUZZ_CHECK(within(body, status->name));
      SLUICE_FUZZ_CHECK(within(body, status->value));
      protocol::append_parameter_status(again, status->name, status->value);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'K': {
      const auto key = protocol::decode_backend_key_data(body);
      if (!key) return;
      protocol::append_backend_key_data(again, *key);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'Z': {
      const auto ready = protocol::decode_ready_for_query(body);
      if (!ready) return;
      SLUICE_FUZZ_CHECK(ready->status == 'I' || ready->status == 'T' || ready->status == 'E');
      protocol::append_ready_for_query(again, ready->status);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'E':
    case 'N': {
      const auto error = protocol::decode_error_response(body);
      if (!error) return;
      for (const auto& [code, value] : error->fields) {
        SLUICE_FUZZ_CHECK(code != '\0');
        SLUICE_FUZZ_CHECK(within(body, value));
        // field() finds the first field with its code.
        const auto first = error->field(code);
        SLUICE_FUZZ_CHECK(within(body, first));
        SLUICE_FUZZ_CHECK(first.data() <= value.data());
      }
      SLUICE_FUZZ_CHECK(within(body, error->sqlstate()));
      SLUICE_FUZZ_CHECK(within(body, error->message()));
      return;
    }
    case 'C': {
      const auto complete = protocol::decode_command_complete(body);
      if (!complete) return;
      SLUICE_FUZZ_CHECK(within(body, complete->tag));
      protocol::append_command_complete(again, complete->tag);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case 'v': {
      const auto negotiate = protocol::decode_negotiate_protocol_version(body);
      if (!negotiate) return;
      for (const auto option : negotiate->unsupported) SLUICE_FUZZ_CHECK(within(body, option));
      protocol::append_negotiate_protocol_version(again, negotiate->newest_minor,
                                                  negotiate->unsupported);
      SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    default:
      return;  // forwarded by byte count
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  auto in = fuzz::as_chars(data, size);
  while (!in.empty()) {
    const auto framed = protocol::frame_message(in, fuzz::max_message);
    if (framed.status == protocol::frame_status::error) {
      SLUICE_FUZZ_CHECK(framed.error);
      return 0;
    }
    if (framed.status == protocol::frame_status::need_more) {
      SLUICE_FUZZ_CHECK(!framed.error);
      return 0;
    }
    const auto& m = framed.message;
    SLUICE_FUZZ_CHECK(m.wire.data() == in.data());
    SLUICE_FUZZ_CHECK(m.wire.size() >= 5 && m.wire.size() <= in.size());
    SLUICE_FUZZ_CHECK(m.body.size() + 5 == m.wire.size());
    // One byte short of the message is always need_more.
    SLUICE_FUZZ_CHECK(
        protocol::frame_message(in.first(m.wire.size() - 1), fuzz::max_message).status ==
        protocol::frame_status::need_more);
    fuzz::decode(m);
    in = in.subspan(m.wire.size());
  }
  return 0;
}
