#include "proxy/config/pgbouncer_ini.hpp"

#include <map>

#include <catch2/catch.hpp>

using namespace sluice::config::pgbouncer;

namespace {

file_reader files(std::map<std::string, std::string> contents) {
  return [contents = std::move(contents)](const std::string& path) -> std::optional<std::string> {
    if (const auto it = contents.find(path); it != contents.end()) return it->second;
    return std::nullopt;
  };
}

}  // namespace

TEST_CASE("pgbouncer ini: sections, comments, quoted keys and positions", "[config][pgbouncer]") {
  const auto ini = parse_ini(
      "; comment\n# another\n[Databases]\n  app = host=db port=5433  \n\"my db\" = dbname=x\n"
      "'q.k' = host=a\n[pgbouncer]\nlisten_port=6000\nnot a setting\n",
      "pgb.ini", files({}));
  REQUIRE(ini.sections.size() == 2);
  CHECK(ini.sections[0].name == "databases");
  REQUIRE(ini.sections[0].entries.size() == 3);
  CHECK(ini.sections[0].entries[0].key == "app");
  CHECK(ini.sections[0].entries[0].value == "host=db port=5433");
  CHECK(ini.sections[0].entries[0].where.line == 4);
  CHECK(ini.sections[0].entries[1].key == "\"my db\"");
  CHECK(unquote_identifier(ini.sections[0].entries[1].key) == "my db");
  CHECK(ini.sections[0].entries[2].key == "q.k");
  CHECK(ini.sections[1].entries[0].value == "6000");
  CHECK(ini.problems == std::vector<std::string>{"pgb.ini:9: not a `key = value` line; ignored"});
}

TEST_CASE("pgbouncer ini: %include reads through the callback, nested and missing",
          "[config][pgbouncer]") {
  const auto ini =
      parse_ini("[pgbouncer]\n%include a.ini\nlisten_port = 1\n%include gone.ini\n", "main.ini",
                files({{"a.ini", "max_client_conn = 5\n%include b.ini\n"},
                       {"b.ini", "[databases]\nx = host=h\n"}}));
  CHECK(ini.included == std::vector<std::string>{"a.ini", "b.ini"});
  REQUIRE(ini.sections.size() == 1 + 1);
  CHECK(ini.sections[0].entries[0].key == "max_client_conn");
  CHECK(ini.sections[0].entries[0].where.file == "a.ini");
  // After the include the last section opened (b.ini's [databases]) goes on, as in PgBouncer.
  CHECK(ini.sections[1].entries.size() == 2);
  CHECK(ini.sections[1].entries[1].key == "listen_port");
  CHECK(ini.problems == std::vector<std::string>{"main.ini:4: could not read the included file "
                                                 "gone.ini"});
}

TEST_CASE("pgbouncer ini: an include loop stops at the depth limit", "[config][pgbouncer]") {
  const auto ini = parse_ini("[pgbouncer]\n%include self.ini\n", "self.ini",
                             files({{"self.ini", "[pgbouncer]\n%include self.ini\n"}}));
  REQUIRE(ini.problems.size() == 1);
  CHECK(ini.problems[0].find("nested too deep") != std::string::npos);
}

TEST_CASE("pgbouncer connstr: quoting as PgBouncer reads it", "[config][pgbouncer]") {
  const auto r = parse_connstr("host=h  Port=5 connect_query='set a=''b''; select 1' user=u");
  REQUIRE(r.problem.empty());
  REQUIRE(r.params.size() == 4);
  CHECK(r.params[1].key == "port");
  CHECK(r.params[2].value == "set a='b'; select 1");
  CHECK(parse_connstr("").params.empty());
  CHECK_FALSE(parse_connstr("host").problem.empty());
  CHECK_FALSE(parse_connstr("host='open").problem.empty());
  CHECK_FALSE(parse_connstr("host=").problem.empty());
}

TEST_CASE("pgbouncer userlist: fields, escaped quotes, comments", "[config][pgbouncer]") {
  const auto u = parse_userlist(
      "\"alice\" \"pw\"\n;\"bob\" \"x\"\n\n\"c\"\"d\" \"md5abc\" extra\nbroken line\n\"e\" \"\"\n",
      "userlist.txt");
  REQUIRE(u.users.size() == 3);
  CHECK(u.users[0].name == "alice");
  CHECK(u.users[0].secret == "pw");
  CHECK(u.users[1].name == "c\"d");
  CHECK(u.users[1].where.line == 4);
  CHECK(u.users[2].secret.empty());
  CHECK(u.problems ==
        std::vector<std::string>{"userlist.txt:5: not a `\"user\" \"password\"` line; ignored"});
}
