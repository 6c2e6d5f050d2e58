// Fuzz target: sluice as the SCRAM-SHA-256 server (protocol/scram_server_fsm), the exchange any
// client reaches before it has proved anything. The input is the client-first-message, a NUL,
// then the client-final-message; the verifier and server nonce are fixed (psql's real exchange
// for the role "sluice", password "pencil", in tests/protocol/fixtures.hpp), so the seed that
// replays that exchange takes the success path and mutations of it explore every step.
//
// Checked on every input, besides no crash and no sanitizer report: server-first carries the
// client's nonce followed by ours, the salt and the iteration count; success comes only with
// done() and a "v=" signature; an error is final (every later call fails); and the
// client-final of the first step alone, or a second client-first, is refused. Each input runs
// three times: channel binding not offered (a plain connection), offered over TLS with plain
// SCRAM-SHA-256 chosen, and with SCRAM-SHA-256-PLUS chosen.
#include <cstdint>
#include <optional>
#include <string>

#include "protocol/base64.hpp"
#include "protocol/scram_server_fsm.hpp"
#include "protocol/scram_verifier.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace sluice::fuzz {
namespace {

constexpr std::string_view pencil_verifier =
    "SCRAM-SHA-256$4096:k3omoCANXHoiUTfUljmfgw==$"
    "IcHTBUXMAKs6yIpTaUSvFm98Fx74JWK31nffTol6sNM=:KdB58Hm5wsm0V4taro4DuagzstdlaE2JCDpMoGQyuns=";
constexpr std::string_view server_nonce = "2DNswmBnL5KB5wQK5rndA4G6";

const protocol::scram_verifier& verifier() {
  static const auto parsed = [] {
    auto v = protocol::parse_scram_verifier(pencil_verifier);
    SLUICE_FUZZ_CHECK(v);
    return *v;
  }();
  return parsed;
}

// The client's nonce as it sent it: the r= attribute of client-first-message-bare.
std::string_view client_nonce(std::string_view client_first) {
  const auto r = client_first.find(",r=");
  if (r == std::string_view::npos) return {};
  const auto nonce = client_first.substr(r + 3);
  return nonce.substr(0, nonce.find(','));
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  // Plain variables, not a structured binding: clang 14 cannot capture those in a lambda.
  const auto messages = fuzz::split_at_nul(fuzz::as_chars(data, size));
  const auto first = messages.first;
  const auto final_message = messages.second;

  const auto exercise = [&](const std::optional<protocol::scram_channel_binding>& binding) {
    protocol::scram_server_fsm fsm(fuzz::verifier(), std::string(fuzz::server_nonce), binding);
    // Out of order: the final step before the first one fails, and ends the exchange.
    {
      protocol::scram_server_fsm early(fuzz::verifier(), std::string(fuzz::server_nonce), binding);
      SLUICE_FUZZ_CHECK(!early.on_client_final(final_message));
      SLUICE_FUZZ_CHECK(!early.on_client_first(first));
      SLUICE_FUZZ_CHECK(!early.done());
    }

    const auto server_first = fsm.on_client_first(first);
    SLUICE_FUZZ_CHECK(!fsm.done());
    if (!server_first) {
      SLUICE_FUZZ_CHECK(!fsm.on_client_final(final_message));
      SLUICE_FUZZ_CHECK(!fsm.done());
      return;
    }
    const auto nonce = fuzz::client_nonce(first);
    SLUICE_FUZZ_CHECK(!nonce.empty());
    const std::string expected = "r=" + std::string(nonce) + std::string(fuzz::server_nonce) +
                                 ",s=" + protocol::base64_encode(fuzz::verifier().salt) + ",i=4096";
    SLUICE_FUZZ_CHECK(*server_first == expected);

    const auto server_final = fsm.on_client_final(final_message);
    if (!server_final) {
      SLUICE_FUZZ_CHECK(!fsm.done());
    } else {
      SLUICE_FUZZ_CHECK(fsm.done());
      SLUICE_FUZZ_CHECK(server_final->starts_with("v="));
    }
    // Whatever happened, the exchange is over: no step can be replayed.
    SLUICE_FUZZ_CHECK(!fsm.on_client_first(first));
    SLUICE_FUZZ_CHECK(!fsm.on_client_final(final_message));
  };
  exercise(std::nullopt);
  exercise(protocol::scram_channel_binding{.tls_server_end_point = "end-point-hash",
                                           .plus_selected = false});
  exercise(protocol::scram_channel_binding{.tls_server_end_point = "end-point-hash",
                                           .plus_selected = true});
  return 0;
}
