#include "proxy/config/pgbouncer_import.hpp"

#include <catch2/catch.hpp>

#include "config_test_support.hpp"
#include "proxy/config/loader.hpp"

using namespace sluice::config;
using namespace sluice::config::pgbouncer;
using namespace sluice::config::testing;
using namespace std::chrono_literals;

namespace {

const file_reader no_files = [](const std::string&) { return std::optional<std::string>{}; };

struct converted {
  import_result result;
  load_result loaded;
};

// Converts, then loads the YAML with every variable it names set to "pw-<name>".
converted convert(std::string_view ini_text, std::optional<std::string_view> users_text = {}) {
  const auto ini = parse_ini(ini_text, "pgbouncer.ini", no_files);
  std::optional<userlist> users;
  if (users_text) users = parse_userlist(*users_text, "userlist.txt");
  auto result = import_pgbouncer(ini, "pgbouncer.ini", users ? &*users : nullptr);
  std::map<std::string, std::string, std::less<>> env;
  for (const auto& v : result.variables) env[v.name] = "pw-" + v.name;
  auto loaded = load_config_text(result.yaml, "out.yaml", fake_env(env));
  return {std::move(result), std::move(loaded)};
}

bool has(const std::string& text, std::string_view needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("import: settings map under sluice's names, with PgBouncer's defaults",
          "[config][pgbouncer]") {
  const auto c = convert(R"([databases]
app = host=db.example port=5433 dbname=appdb pool_size=7 reserve_pool_size=3 pool_mode=transaction
[pgbouncer]
listen_addr = *
listen_port = 7432
max_client_conn = 500
default_pool_size = 15
reserve_pool_timeout = 2.5
server_lifetime = 1800
server_idle_timeout = 0
query_timeout = 30
client_idle_timeout = 600
admin_users = alice
stats_users = bob, alice
auth_type = scram-sha-256
)",
                         "\"alice\" \"secret-a\"\n\"bob\" \"SCRAM-SHA-256$4096:c2FsdA==$"
                         "c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3RvcmU=:"
                         "c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2VydmU=\"\n");
  INFO(c.result.yaml);
  REQUIRE(error_strings(c.loaded) == std::vector<std::string>{});
  const settings& s = *c.loaded.config;
  CHECK(s.listen.host == "0.0.0.0");
  CHECK(s.listen.port == 7432);
  CHECK(s.max_clients == 500);
  CHECK(s.auth == auth_method::scram_sha_256);
  // PgBouncer pools in session mode unless told otherwise; sluice's default is transaction.
  CHECK(s.pool.mode == pool_mode::session);
  CHECK(s.pool.size == 15);
  CHECK(s.pool.overflow_after == 2500ms);
  CHECK(s.pool.recycle == std::optional<duration>{30min});
  CHECK(s.pool.idle_timeout == std::nullopt);
  CHECK(s.pool.query_timeout == std::optional<duration>{30s});
  CHECK(s.pool.client_idle_timeout == std::optional<duration>{10min});
  CHECK(s.pool.timeout == 2min);         // query_wait_timeout's default, 120
  CHECK(s.pool.connect_timeout == 15s);  // server_connect_timeout's default
  CHECK(s.pool.prepared_statements == 200);
  REQUIRE(s.databases.size() == 1);
  const auto& db = s.databases[0];
  CHECK(db.server == upstream("db.example", 5433, "appdb"));
  CHECK(db.pool.size == 7);
  CHECK(db.pool.overflow == 3);
  CHECK(db.pool.mode == pool_mode::transaction);
  // A plain password becomes a variable; a verifier is kept.
  REQUIRE(s.users.size() == 2);
  CHECK(s.users[0].password == "pw-SLUICE_PASSWORD_ALICE");
  CHECK(s.users[1].password.starts_with("SCRAM-SHA-256$4096:"));
  CHECK_FALSE(has(c.result.yaml, "secret-a"));
  CHECK(s.admin_users == std::vector<std::string>{"alice"});
  CHECK(s.stats_users == std::vector<std::string>{"bob", "alice"});
  CHECK(c.result.variables.size() == 1);
  CHECK(has(c.result.yaml, "! listen_addr = * is every address"));
}

TEST_CASE("import: nothing is dropped silently", "[config][pgbouncer]") {
  const auto c = convert(R"([databases]
* = host=fallback
app = host=a,b dbname=x connect_query='select 1' max_db_connections=4 auth_user=au password=dbpw
enc = host=h client_encoding=UTF8 timezone=UTC
[users]
alice = pool_size=3
[peers]
1 = host=/tmp/p1
[pgbouncer]
logfile = /var/log/pgbouncer.log
pool_mode = statement
server_tls_sslmode = verify-full
client_tls_key_file = /etc/ssl/key.pem
made_up_setting = 1
auth_type = hba
auth_file = /etc/pgbouncer/userlist.txt
)");
  INFO(c.result.yaml);
  REQUIRE(error_strings(c.loaded) == std::vector<std::string>{});
  const auto& y = c.result.yaml;
  for (const auto* needle :
       {"! * (pgbouncer.ini:2): sluice has no fallback database",
        "! host=a,b: sluice connects to one host, the first",
        "! connect_query=select 1: sluice runs no query",
        "! max_db_connections=4:", "! auth_user=au:", "! [users] alice = pool_size=3",
        "! [peers]: sluice has no peering", "! logfile = /var/log/pgbouncer.log",
        "! pool_mode = statement: sluice has no statement mode",
        "! server_tls_sslmode = verify-full", "! client_tls_key_file = /etc/ssl/key.pem",
        "! made_up_setting = 1 (pgbouncer.ini:14): not a PgBouncer setting sluice knows of",
        "! auth_type = hba: sluice has no hba authentication",
        "auth_file /etc/pgbouncer/userlist.txt was not read: pass it with --userlist"}) {
    CAPTURE(needle);
    CHECK(has(y, needle));
  }
  CHECK_FALSE(has(y, "dbpw"));
  const settings& s = *c.loaded.config;
  REQUIRE(s.databases.size() == 2);
  CHECK(s.databases[0].server.host == "a");
  CHECK(s.databases[0].server.password == "pw-SLUICE_DB_APP_PASSWORD");
  CHECK(s.databases[1].server.options == "-c client_encoding=UTF8 -c timezone=UTC");
  CHECK(s.pool.mode == pool_mode::transaction);
  // Without --userlist the users named in the ini get their passwords from the environment.
  REQUIRE(s.users.size() == 1);
  CHECK(s.users[0].name == "alice");
}

TEST_CASE("import: the auth method fits every stored secret", "[config][pgbouncer]") {
  const std::string ini = "[databases]\nd = host=h\n[pgbouncer]\nauth_type = md5\n";
  SECTION("md5 hashes and plain passwords keep md5") {
    const auto c = convert(ini, "\"a\" \"md5" + std::string(32, 'a') + "\"\n\"b\" \"pw\"\n");
    REQUIRE(c.loaded.config);
    CHECK(c.loaded.config->auth == auth_method::md5);
  }
  SECTION("md5 hashes with SCRAM verifiers need plain, and the output says so") {
    const auto c = convert(ini, "\"a\" \"md5" + std::string(32, 'a') +
                                    "\"\n\"b\" \"SCRAM-SHA-256$4096:c2FsdA==$"
                                    "c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3RvcmU=:"
                                    "c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2VydmU=\"\n");
    REQUIRE(c.loaded.config);
    CHECK(c.loaded.config->auth == auth_method::plain);
    CHECK(has(c.result.yaml, "! plain sends passwords in clear text"));
  }
}

TEST_CASE("import: without databases a placeholder says so; without users the output says how",
          "[config][pgbouncer]") {
  const auto c = convert("[databases]\n[pgbouncer]\nunix_socket_dir = /run/pg\n");
  CHECK(has(c.result.yaml, "url: \"host=/run/pg dbname=postgres\""));
  CHECK(has(c.result.yaml, "! No users: sluice needs at least one"));
  CHECK(error_strings(c.loaded).size() == 1);  // users: [] is refused, as it should be
}

TEST_CASE("import: values that would read as variables stay literal", "[config][pgbouncer]") {
  const auto c = convert("[databases]\nd = host=h dbname=${X}\n",
                         "\"u\" \"md5" + std::string(32, 'b') + "\"\n");
  REQUIRE(error_strings(c.loaded) == std::vector<std::string>{});
  CHECK(c.loaded.config->databases[0].server.dbname == "${X}");
}

TEST_CASE("import: password variables are distinct", "[config][pgbouncer]") {
  CHECK(password_variable("app-user.1") == "SLUICE_PASSWORD_APP_USER_1");
  const auto c = convert("[databases]\nd = host=h\n", "\"a-b\" \"x\"\n\"a_b\" \"y\"\n");
  REQUIRE(c.result.variables.size() == 2);
  CHECK(c.result.variables[0].name != c.result.variables[1].name);
  REQUIRE(c.loaded.config);
  CHECK(c.loaded.config->users[0].password != c.loaded.config->users[1].password);
}
