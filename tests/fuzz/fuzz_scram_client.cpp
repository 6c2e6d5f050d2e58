// Fuzz target: sluice as the SCRAM-SHA-256 client (protocol/scram_client_fsm), logging in to a
// server, which may be anything that answers on the upstream address. The input is the
// server-first-message, a NUL, then the server-final-message; the password and client nonce are
// fixed to those of psql's real exchange (tests/protocol/fixtures.hpp), so the seed holding the
// real server messages takes the success path.
//
// Checked on every input, besides no crash and no sanitizer report: client-final repeats the
// server's whole nonce and carries a proof; success comes only with done(), which needs the
// server's signature to verify; an error is final.
#include <charconv>
#include <cstdint>
#include <string>

#include "protocol/scram_client_fsm.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace sluice::fuzz {
namespace {

constexpr std::string_view client_nonce = "C2mmBVQY8QOG9e25PIXczitW";

// The client runs PBKDF2 with the iteration count the server names, as libpq does; a server
// asking for millions would only time the fuzzer out, so such inputs are not run.
bool cheap_enough(std::string_view server_first) {
  const auto i = server_first.find(",i=");
  if (i == std::string_view::npos) return true;
  const auto digits = server_first.substr(i + 3);
  long value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return ec != std::errc{} || value <= 10000;
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sluice;
  const auto [server_first, server_final] = fuzz::split_at_nul(fuzz::as_chars(data, size));
  if (!fuzz::cheap_enough(server_first)) return 0;

  protocol::scram_client_fsm fsm("pencil", std::string(fuzz::client_nonce));
  // Out of order: a server message before client-first fails.
  {
    protocol::scram_client_fsm early("pencil", std::string(fuzz::client_nonce));
    SLUICE_FUZZ_CHECK(!early.on_server_first(server_first));
    SLUICE_FUZZ_CHECK(early.on_server_final(server_final));
    SLUICE_FUZZ_CHECK(!early.done());
  }
  SLUICE_FUZZ_CHECK(fsm.client_first_message() == "n,,n=,r=" + std::string(fuzz::client_nonce));

  const auto client_final = fsm.on_server_first(server_first);
  SLUICE_FUZZ_CHECK(!fsm.done());
  if (!client_final) {
    SLUICE_FUZZ_CHECK(fsm.on_server_final(server_final));
    SLUICE_FUZZ_CHECK(!fsm.done());
    return 0;
  }
  // "c=biws,r=<the server's whole nonce>,p=<proof>"; the server's nonce extends ours.
  const auto nonce_start = server_first.find("r=");
  SLUICE_FUZZ_CHECK(nonce_start != std::string_view::npos);
  const auto nonce = server_first.substr(nonce_start + 2, server_first.find(',') - nonce_start - 2);
  SLUICE_FUZZ_CHECK(nonce.starts_with(fuzz::client_nonce) && nonce.size() > 24);
  SLUICE_FUZZ_CHECK(client_final->starts_with("c=biws,r=" + std::string(nonce) + ",p="));

  const auto final_error = fsm.on_server_final(server_final);
  SLUICE_FUZZ_CHECK(fsm.done() == !final_error);
  if (!final_error) SLUICE_FUZZ_CHECK(server_final.starts_with("v="));
  // The exchange is over either way.
  SLUICE_FUZZ_CHECK(!fsm.on_server_first(server_first));
  SLUICE_FUZZ_CHECK(fsm.on_server_final(server_final));
  return 0;
}
