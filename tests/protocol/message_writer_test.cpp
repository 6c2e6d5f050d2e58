#include "protocol/message_writer.hpp"

#include <catch2/catch.hpp>

#include "tests/protocol/hex.hpp"

namespace sluice::protocol {
namespace {

using test::to_hex;

TEST_CASE("message_writer patches the length of typed and untyped messages", "[message_writer]") {
  std::string out = "prefix";
  message_writer(out, 'Q').cstring("hi").finish();
  message_writer::untyped(out)
      .int32(-1)
      .int16(258)
      .uint16(65535)
      .byte('x')
      .bytes(std::string_view("yz"))
      .finish();
  CHECK(to_hex(out) ==
        "707265666978"  // existing bytes are kept
        "51"
        "00000007"
        "686900"
        "0000000f"
        "ffffffff"
        "0102"
        "ffff"
        "78"
        "797a");
}

TEST_CASE("message_writer writes an empty typed message as 5 bytes", "[message_writer]") {
  std::string out;
  message_writer(out, 'S').finish();
  CHECK(to_hex(out) == "5300000004");
}

}  // namespace
}  // namespace sluice::protocol
