#include "protocol/base64.hpp"

#include <catch2/catch.hpp>

namespace sluice::protocol {
namespace {

TEST_CASE("base64 matches the RFC 4648 test vectors", "[base64]") {
  const auto [plain, encoded] = GENERATE(table<std::string, std::string>({
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {"n,,", "biws"},
      {"y,,", "eSws"},
      {std::string("\0\xff\xfe", 3), "AP/+"},
  }));
  CHECK(base64_encode(plain) == encoded);
  const auto decoded = base64_decode(encoded);
  REQUIRE(decoded);
  CHECK(*decoded == plain);
}

TEST_CASE("base64_decode rejects anything not strictly base64", "[base64]") {
  const std::string text = GENERATE(as<std::string>{}, "Zg=", "Z===", "====", "Zg=a", "=Zm9",
                                    "Zm9v\n", " Zm9v", "Zm9*", "Zm-_", "Zm9vY");
  INFO(text);
  CHECK_FALSE(base64_decode(text));
}

}  // namespace
}  // namespace sluice::protocol
