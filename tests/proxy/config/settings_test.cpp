#include "proxy/config/settings.hpp"

#include <catch2/catch.hpp>

using namespace sluice::config;

TEST_CASE("find_database and find_user match names exactly", "[config][settings]") {
  settings config;
  config.databases.push_back({.name = "app", .server = {}, .pool = {}});
  config.databases.push_back({.name = "App", .server = {}, .pool = {}});
  config.users.push_back({.name = "alice", .password = "a"});

  REQUIRE(config.find_database("app") != nullptr);
  CHECK(config.find_database("app") == &config.databases[0]);
  CHECK(config.find_database("App") == &config.databases[1]);
  CHECK(config.find_database("APP") == nullptr);
  CHECK(config.find_database("") == nullptr);
  CHECK(config.find_user("alice") == &config.users[0]);
  CHECK(config.find_user("bob") == nullptr);
}

TEST_CASE("stored password formats", "[config][settings]") {
  // Shaped as PostgreSQL writes a verifier: base64 salt, two 32-byte base64 keys.
  const std::string scram =
      "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$"
      "9jrpOIWlR+Dbl7yuO8z4eVbafwj5IRCoiKnr1y+NReg=:"
      "mDhhjJ1ADmJ4P8Ct3ae0o5i3BHUQx1jaSXXgStMSdgE=";
  const auto [stored, format] = GENERATE_COPY(table<std::string, password_format>({
      {"pw", password_format::plain},
      {"", password_format::plain},
      {"md5" + std::string(32, 'a'), password_format::md5},
      {"md53175bce1d3201d16594cebf9d7eb3f9d", password_format::md5},
      {"md5" + std::string(31, 'a'), password_format::plain},
      {"md5" + std::string(32, 'g'), password_format::plain},
      {scram, password_format::scram_sha_256},
      {"SCRAM-SHA-256$0:c2FsdA==$" + scram.substr(scram.rfind('$') + 1), password_format::plain},
      {"SCRAM-SHA-256$4096:c2FsdA==$short:key", password_format::plain},
      {"SCRAM-SHA-256$4096:c2FsdA==", password_format::plain},
      {"SCRAM-SHA-256$", password_format::plain},
  }));
  CAPTURE(stored);
  CHECK(classify_password(stored) == format);
}

TEST_CASE("which stored formats each auth method can check", "[config][settings]") {
  CHECK(can_authenticate(auth_method::scram_sha_256, password_format::plain));
  CHECK(can_authenticate(auth_method::scram_sha_256, password_format::scram_sha_256));
  CHECK_FALSE(can_authenticate(auth_method::scram_sha_256, password_format::md5));
  CHECK(can_authenticate(auth_method::md5, password_format::plain));
  CHECK(can_authenticate(auth_method::md5, password_format::md5));
  CHECK_FALSE(can_authenticate(auth_method::md5, password_format::scram_sha_256));
  CHECK(can_authenticate(auth_method::plain, password_format::plain));
  CHECK(can_authenticate(auth_method::plain, password_format::md5));
  CHECK(can_authenticate(auth_method::plain, password_format::scram_sha_256));
}
