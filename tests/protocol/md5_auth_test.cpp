#include "protocol/md5_auth.hpp"

#include <catch2/catch.hpp>

#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::from_hex;

TEST_CASE("md5_password_hash matches what PostgreSQL stores", "[md5]") {
  // md5("foobar") = 3858f62230ac3c915f300c664312c63f; the fixture is bar's pg_authid row.
  CHECK(md5_password_hash("foo", "bar") == "md53858f62230ac3c915f300c664312c63f");
  CHECK(md5_password_hash("foo", "bar") == test::fixtures::bar_md5_hash);
  CHECK(md5_password_hash("", "") == "md5d41d8cd98f00b204e9800998ecf8427e");  // md5("")
}

TEST_CASE("md5_salted_response answers a real AuthenticationMD5Password as psql did", "[md5]") {
  const std::string request = from_hex(test::fixtures::auth_md5);
  const auto auth = decode_authentication(as_bytes(request).subspan(5));
  REQUIRE(auth);
  REQUIRE(auth->code == auth_code::md5);
  const std::span<const char, 4> salt(auth->data.data(), 4);

  const std::string answer = from_hex(test::fixtures::md5_password_message);
  const auto password = decode_password_message(as_bytes(answer).subspan(5));
  REQUIRE(password);

  CHECK(md5_salted_response(test::fixtures::bar_md5_hash, salt) == password->password);
  // The hex part alone gives the same answer.
  CHECK(md5_salted_response(test::fixtures::bar_md5_hash.substr(3), salt) == password->password);

  CHECK(md5_response_matches(password->password, test::fixtures::bar_md5_hash, salt));
  std::string wrong(password->password);
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  CHECK_FALSE(md5_response_matches(wrong, test::fixtures::bar_md5_hash, salt));
  CHECK_FALSE(
      md5_response_matches(password->password.substr(1), test::fixtures::bar_md5_hash, salt));
  CHECK_FALSE(md5_response_matches("", test::fixtures::bar_md5_hash, salt));
  const char other_salt[4] = {'\x00', '\x00', '\x00', '\x00'};
  CHECK_FALSE(md5_response_matches(password->password, test::fixtures::bar_md5_hash, other_salt));
}

}  // namespace
}  // namespace sluice::protocol
