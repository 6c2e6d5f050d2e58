#include "protocol/errc.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::protocol {
namespace {

TEST_CASE("errc converts to an error_code of the protocol category", "[errc]") {
  const errc value = GENERATE(errc::need_more, errc::message_too_long, errc::bad_length,
                              errc::truncated, errc::malformed, errc::unsupported_protocol,
                              errc::auth_failed, errc::unsupported_mechanism);
  const std::error_code code = value;  // Implicit, through is_error_code_enum.
  CHECK(code);
  CHECK(code == value);
  CHECK(&code.category() == &protocol_category());
  CHECK(code.category().name() == std::string("sluice.protocol"));
  CHECK_FALSE(code.message().empty());
  CHECK(code.message() != "unknown protocol error");
}

TEST_CASE("errc::ok is the empty error code", "[errc]") {
  const std::error_code code = make_error_code(errc::ok);
  CHECK_FALSE(code);
}

}  // namespace
}  // namespace sluice::protocol
