// Fuzz target: the first bytes a client sends, before any authentication: what an attacker
// reaches with no password at all. Framed and decoded as the daemon does (frame_startup_packet,
// decode_startup_packet), then the `options` parameter split as the daemon tracks it
// (proxy/startup_options, pure code).
//
// Checked on every input, besides no crash and no sanitizer report: the packet's length is
// within PostgreSQL's bounds and the body lies within it; a shorter prefix is need_more; a
// decoded StartupMessage, rebuilt with append_startup_message, decodes to the same parameters;
// a CancelRequest, SSLRequest or GSSENCRequest rebuilt is byte for byte the packet.
#include <cstdint>
#include <string>

#include "protocol/framing.hpp"
#include "protocol/startup.hpp"
#include "proxy/startup_options.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace sluice::fuzz {
namespace {

bool same_bytes(std::span<const char> a, const std::string& b) {
  return std::string_view(a.data(), a.size()) == b;
}

void check_decoded(const protocol::message_view& m, const protocol::startup_packet& packet) {
  std::string again;
  switch (packet.kind) {
    case protocol::startup_kind::startup: {
      std::vector<std::pair<std::string, std::string>> params(packet.parameters.begin(),
                                                              packet.parameters.end());
      for (const auto& [name, value] : params) {
        SLUICE_FUZZ_CHECK(!name.empty());
        SLUICE_FUZZ_CHECK(name.find('\0') == std::string::npos);
        SLUICE_FUZZ_CHECK(value.find('\0') == std::string::npos);
        if (name == "options") {
          const auto parsed = proxy::parse_startup_options(value);
          for (const auto& [setting, setting_value] : parsed.settings) {
            SLUICE_FUZZ_CHECK(!setting.empty());
            SLUICE_FUZZ_CHECK(setting_value.size() <= value.size());
          }
          SLUICE_FUZZ_CHECK(parsed.unsupported.size() <= value.size());
        }
      }
      protocol::append_startup_message(again, params);
      const auto framed = protocol::frame_startup_packet({again.data(), again.size()});
      SLUICE_FUZZ_CHECK(framed.status == protocol::frame_status::complete);
      const auto decoded = protocol::decode_startup_packet(framed.message.body);
      SLUICE_FUZZ_CHECK(decoded);
      SLUICE_FUZZ_CHECK(decoded->kind == protocol::startup_kind::startup);
      SLUICE_FUZZ_CHECK(decoded->parameters == packet.parameters);
      // The rebuilt packet says 3.0; with that version the original is the same bytes.
      if (packet.version == protocol::protocol_3_0) SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
      return;
    }
    case protocol::startup_kind::cancel_request:
      SLUICE_FUZZ_CHECK(packet.version == protocol::cancel_request_code);
      protocol::append_cancel_request(again, packet.cancel);
      break;
    case protocol::startup_kind::ssl_request:
      SLUICE_FUZZ_CHECK(packet.version == protocol::ssl_request_code);
      protocol::append_ssl_request(again);
      break;
    case protocol::startup_kind::gssenc_request:
      SLUICE_FUZZ_CHECK(packet.version == protocol::gssenc_request_code);
      protocol::append_gssenc_request(again);
      break;
  }
  SLUICE_FUZZ_CHECK(packet.parameters.empty());
  SLUICE_FUZZ_CHECK(same_bytes(m.wire, again));
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  auto in = fuzz::as_chars(data, size);
  // A client may send SSLRequest or GSSENCRequest, get 'N', and then its StartupMessage: frame
  // packets one after another as the daemon does.
  for (int packets = 0; !in.empty() && packets < 4; ++packets) {
    const auto framed = protocol::frame_startup_packet(in);
    if (framed.status == protocol::frame_status::error) {
      SLUICE_FUZZ_CHECK(framed.error);
      return 0;
    }
    if (framed.status == protocol::frame_status::need_more) {
      SLUICE_FUZZ_CHECK(!framed.error);
      return 0;
    }
    const auto& m = framed.message;
    SLUICE_FUZZ_CHECK(m.type == '\0');
    SLUICE_FUZZ_CHECK(m.wire.data() == in.data());
    SLUICE_FUZZ_CHECK(m.wire.size() >= 8 && m.wire.size() <= protocol::max_startup_packet_length);
    SLUICE_FUZZ_CHECK(m.body.size() + 4 == m.wire.size());
    SLUICE_FUZZ_CHECK(protocol::frame_startup_packet(in.first(m.wire.size() - 1)).status ==
                      protocol::frame_status::need_more);
    const auto packet = protocol::decode_startup_packet(m.body);
    if (packet) {
      fuzz::check_decoded(m, *packet);
    } else if (packet.error == protocol::errc::unsupported_protocol) {
      // Still says what was asked for, so the daemon can report it.
      SLUICE_FUZZ_CHECK(packet.value.kind == protocol::startup_kind::startup);
      SLUICE_FUZZ_CHECK((packet.value.version >> 16) != 3);
    }
    in = in.subspan(m.wire.size());
  }
  return 0;
}
