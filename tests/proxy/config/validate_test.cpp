#include "proxy/config/validate.hpp"

#include <catch2/catch.hpp>

using namespace sluice::config;

namespace {

settings two_users(std::string first, std::string second) {
  settings config;
  config.users = {{.name = "a", .password = std::move(first)},
                  {.name = "b", .password = std::move(second)}};
  return config;
}

std::vector<std::string> strings(const std::vector<config_error>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.to_string());
  return out;
}

}  // namespace

TEST_CASE("validate: a consistent config has no errors", "[config][validate]") {
  CHECK(validate_settings(two_users("x", "y"), {}, "f").empty());
}

TEST_CASE("validate: errors sit at the key that causes them", "[config][validate]") {
  settings config;
  config.pool.size = 2;
  config.pool.min_size = 3;
  const source_map where{{"pool.min_size", {4, 13}}, {"pool.size", {3, 9}}};
  CHECK(
      strings(validate_settings(config, where, "f.yaml")) ==
      std::vector<std::string>{"f.yaml:4:13: pool.min_size: min_size (3) is larger than size (2)"});
}

TEST_CASE("validate: rules over unreadable values are skipped", "[config][validate]") {
  settings config;
  config.pool.min_size = 30;  // and size is the default 20 because the file's was unreadable
  const source_map where{{"pool.min_size", {4, 13}}, {"pool.size", {3, 9, false}}};
  CHECK(validate_settings(config, where, "f").empty());

  settings md5_users = two_users("md5" + std::string(32, '0'), "x");
  CHECK(validate_settings(md5_users, {{"auth", {1, 7, false}}}, "f").empty());
  CHECK(validate_settings(md5_users, {}, "f").size() == 1);
}

TEST_CASE("validate: a database is judged only on its own overrides", "[config][validate]") {
  settings config;
  config.pool.min_size = 5;
  database_settings inherits{.name = "inherits", .server = {}, .pool = config.pool};
  database_settings shrinks{.name = "shrinks", .server = {}, .pool = config.pool};
  shrinks.pool.size = 4;
  config.databases = {inherits, shrinks};
  const source_map where{{"databases.shrinks.pool.size", {9, 15}}};
  CHECK(strings(validate_settings(config, where, "f")) ==
        std::vector<std::string>{
            "f:9:15: databases.shrinks.pool.min_size: min_size (5) is larger than size (4)"});
}

TEST_CASE("validate: stored password formats must suit the auth method", "[config][validate]") {
  const std::string md5 = "md5" + std::string(32, 'f');
  const std::string scram =
      "SCRAM-SHA-256$4096:c2FsdA==$"
      "9jrpOIWlR+Dbl7yuO8z4eVbafwj5IRCoiKnr1y+NReg=:"
      "mDhhjJ1ADmJ4P8Ct3ae0o5i3BHUQx1jaSXXgStMSdgE=";
  const auto [method, password, problem] =
      GENERATE_COPY(table<auth_method, std::string, std::string>({
          {auth_method::scram_sha_256, "plain", ""},
          {auth_method::scram_sha_256, scram, ""},
          {auth_method::scram_sha_256, md5,
           "is an md5 hash, which cannot check `auth: scram-sha-256` logins; store the plain "
           "password or change auth"},
          {auth_method::md5, md5, ""},
          {auth_method::md5, scram,
           "is a SCRAM-SHA-256 verifier, which cannot check `auth: md5` logins; store the plain "
           "password or change auth"},
          {auth_method::plain, md5, ""},
          {auth_method::plain, scram, ""},
          {auth_method::plain, "SCRAM-SHA-256$4096:bad",
           "starts with \"SCRAM-SHA-256$\" but is not a valid verifier "
           "(SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)"},
      }));
  settings config = two_users("x", password);
  config.auth = method;
  const auto errors = validate_settings(config, {{"users[1].password", {7, 15}}}, "f");
  if (problem.empty()) {
    CHECK(errors.empty());
  } else {
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == config_error{"f", 7, 15, "users[1].password", problem});
  }
}

TEST_CASE("validate: duplicate user names", "[config][validate]") {
  settings config;
  config.users = {{"app", "1"}, {"other", "2"}, {"app", "3"}, {"app", "4"}};
  const source_map where{
      {"users[0].name", {2, 11}}, {"users[2].name", {6, 11}}, {"users[3].name", {8, 11}}};
  CHECK(strings(validate_settings(config, where, "f")) ==
        std::vector<std::string>{
            "f:6:11: users[2].name: duplicate user name \"app\" (also users[0], line 2)",
            "f:8:11: users[3].name: duplicate user name \"app\" (also users[0], line 2)"});
}

TEST_CASE("validate: admin_users and stats_users name configured users", "[config][validate]") {
  settings config = two_users("x", "y");
  config.admin_users = {"a", "nobody"};
  config.stats_users = {"b", "a", "ghost"};
  const source_map where{{"admin_users", {1, 14}},
                         {"admin_users[1]", {1, 18}},
                         {"stats_users", {2, 13}},
                         {"users[0].name", {4, 11}},
                         {"users[1].name", {6, 11}}};
  CHECK(strings(validate_settings(config, where, "f")) ==
        std::vector<std::string>{
            "f:1:18: admin_users[1]: \"nobody\" is not one of users, so it could never log in to "
            "the admin console",
            // no position of its own: at the list
            "f:2:13: stats_users[2]: \"ghost\" is not one of users, so it could never log in to "
            "the admin console"});
  // A user name that could not be read might be the one listed: nothing is judged.
  source_map unreadable_name = where;
  unreadable_name["users[1].name"].valid = false;
  CHECK(validate_settings(config, unreadable_name, "f").empty());
}

TEST_CASE("config_error formatting", "[config][validate]") {
  CHECK(config_error{"a.yaml", 3, 7, "pool.size", "bad"}.to_string() ==
        "a.yaml:3:7: pool.size: bad");
  CHECK(config_error{"a.yaml", 3, 7, "", "bad"}.to_string() == "a.yaml:3:7: bad");
  CHECK(config_error{"a.yaml", 0, 0, "", "cannot read"}.to_string() == "a.yaml: cannot read");
}
