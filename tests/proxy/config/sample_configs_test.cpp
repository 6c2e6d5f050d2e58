// The sample configs in etc/ must always load: the README runs etc/sluice.local.yaml, and
// etc/sluice.yaml is the reference every key is documented in.

#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "config_test_support.hpp"
#include "proxy/config/key_table.hpp"

using namespace sluice::config;
using namespace sluice::config::testing;
using namespace std::chrono_literals;

namespace {

const std::string etc = std::string(SLUICE_SOURCE_DIR) + "/etc/";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("etc/sluice.yaml loads and means what its comments say", "[config][samples]") {
  const auto result = load_config_file(
      etc + "sluice.yaml", fake_env({{"APP_DB_PASSWORD", "db-secret"}, {"APP_PASSWORD", "s3"}}));
  REQUIRE(error_strings(result) == std::vector<std::string>{});
  const settings& c = *result.config;

  // It spells out the defaults...
  settings defaults;
  // (listen.tls names example files, with mode: disable, so that it is off all the same.)
  auto listen = c.listen;
  CHECK(listen.tls.effective_mode() == client_tls_mode::disable);
  listen.tls = defaults.listen.tls;
  CHECK(listen == defaults.listen);
  CHECK(c.workers == defaults.workers);
  CHECK(c.pool == defaults.pool);
  CHECK(c.auth == defaults.auth);
  CHECK(c.max_message_size == defaults.max_message_size);
  CHECK(c.log_level == defaults.log_level);
  CHECK(c.admin_users.empty());
  CHECK(c.stats_users.empty());

  // ...plus two databases with overrides.
  REQUIRE(c.databases.size() == 2);
  const auto* app = c.find_database("app");
  REQUIRE(app);
  CHECK(app->server == upstream("127.0.0.1", 5432, "app", "app", "db-secret"));
  CHECK(app->pool.size == 10);
  const auto* reporting = c.find_database("reporting");
  REQUIRE(reporting);
  CHECK(reporting->server.host == "/var/run/postgresql");
  CHECK(reporting->server.dbname == "reports");
  CHECK(reporting->pool.mode == pool_mode::session);
  CHECK(reporting->pool.query_timeout == 5min);
  CHECK(c.users == std::vector<user_settings>{{"app", "s3"}});
}

TEST_CASE("etc/sluice.yaml shows every key with a comment", "[config][samples]") {
  const std::string text = read_file(etc + "sluice.yaml");
  for (const auto& spec : key_table()) {
    if (spec.path.find('<') != std::string_view::npos || spec.path.starts_with("users")) {
      continue;  // per-database and per-user keys are shown by example
    }
    CAPTURE(spec.path);
    // A key without a default may be shown commented out ("# cert_file: ...  # ...").
    const std::regex line("(^|\\n) *(# )?" + std::string(key_name(spec)) + ":[^\\n]*#");
    CHECK(std::regex_search(text, line));
  }
}

TEST_CASE("etc/sluice.local.yaml loads from the environment", "[config][samples]") {
  const auto result = load_config_file(
      etc + "sluice.local.yaml",
      fake_env({{"SLUICE_UPSTREAM_URL", "postgresql://postgres:pg%20pw@127.0.0.1:5432/postgres"},
                {"SLUICE_USER", "alice"},
                {"SLUICE_PASSWORD", "wonderland"},
                {"SLUICE_PORT", "6543"}}));
  REQUIRE(error_strings(result) == std::vector<std::string>{});
  const settings& c = *result.config;
  CHECK(c.listen == listen_settings{.host = "127.0.0.1", .port = 6543});
  REQUIRE(c.databases.size() == 1);
  CHECK(c.databases[0].name == "postgres");
  CHECK(c.databases[0].server == upstream("127.0.0.1", 5432, "postgres", "postgres", "pg pw"));
  CHECK(c.users == std::vector<user_settings>{{"alice", "wonderland"}});
  CHECK(c.admin_users == std::vector<std::string>{"alice"});
}

TEST_CASE("etc/sluice.local.yaml names each variable it lacks", "[config][samples]") {
  const auto result = load_config_file(etc + "sluice.local.yaml", fake_env());
  const std::string file = etc + "sluice.local.yaml";
  CHECK(error_strings(result) ==
        std::vector<std::string>{
            file + ":10:9: listen.port: environment variable SLUICE_PORT is not set",
            file + ":16:10: databases.postgres.url: environment variable SLUICE_UPSTREAM_URL is "
                   "not set",
            file + ":19:11: users[0].name: environment variable SLUICE_USER is not set",
            file + ":20:15: users[0].password: environment variable SLUICE_PASSWORD is not set",
            file + ":23:15: admin_users[0]: environment variable SLUICE_USER is not set",
        });
}
