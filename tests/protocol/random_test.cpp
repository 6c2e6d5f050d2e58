#include "protocol/random.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::protocol {
namespace {

TEST_CASE("random_bytes fills the whole span with fresh bytes", "[random]") {
  std::string a(32, '\0');
  std::string b(32, '\0');
  random_bytes(a);
  random_bytes(b);
  CHECK(a != std::string(32, '\0'));  // 2^-256 chance of a false failure.
  CHECK(a != b);
  random_bytes({});  // An empty request is fine.
}

}  // namespace
}  // namespace sluice::protocol
