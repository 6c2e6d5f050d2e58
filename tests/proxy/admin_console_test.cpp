// The admin console's replies and the metrics text, from a fixed snapshot: no sockets.
#include <catch2/catch.hpp>

#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "proxy/admin_console.hpp"
#include "proxy/admin_tables.hpp"
#include "proxy/metrics_text.hpp"

namespace {

using sluice::proxy::admin_console;
using sluice::proxy::admin_snapshot;
using sluice::proxy::console_access;

admin_snapshot sample() {
  static const sluice::config::settings settings = [] {
    sluice::config::settings s;
    s.databases.push_back({.name = "app", .server = {}, .pool = {}});
    s.users = {{"alice", "pw"}};
    return s;
  }();
  admin_snapshot snapshot;
  snapshot.settings = &settings;
  admin_snapshot::pool_row row;
  row.database = "app";
  row.user = "alice";
  row.settings.size = 7;
  row.servers = {
      .idle = 2, .active = 3, .connecting = 1, .waiting = 4, .total = 6, .overflow_in_use = 0};
  row.clients_waiting = 4;
  row.counters.totals.queries = 12;
  snapshot.pools.push_back(row);
  snapshot.clients_open = 42;
  snapshot.prepared_statements = 5;
  return snapshot;
}

// The messages of a reply, in order.
std::vector<sluice::protocol::message_view> messages(const std::string& reply) {
  std::vector<sluice::protocol::message_view> out;
  std::span<const char> rest(reply.data(), reply.size());
  while (!rest.empty()) {
    const auto framed = sluice::protocol::frame_message(rest, 1 << 20);
    REQUIRE(framed.status == sluice::protocol::frame_status::complete);
    out.push_back(framed.message);
    rest = rest.subspan(framed.message.wire.size());
  }
  return out;
}

std::string types(const std::string& reply) {
  std::string out;
  for (const auto& m : messages(reply)) out.push_back(m.type);
  return out;
}

// A frontend message: type, int32 length, body.
std::string frontend(char type, const std::string& body) {
  std::string out(1, type);
  const auto length = static_cast<std::uint32_t>(body.size() + 4);
  for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((length >> shift) & 0xff));
  return out + body;
}
std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}

std::string answer(admin_console& console, const std::string& wire) {
  const auto framed = sluice::protocol::frame_message({wire.data(), wire.size()}, 1 << 20);
  REQUIRE(framed.status == sluice::protocol::frame_status::complete);
  return console.answer(framed.message);
}

admin_console console_over(admin_snapshot snapshot) {
  return admin_console(console_access::admin, [snapshot] { return snapshot; });
}

}  // namespace

TEST_CASE("admin console: SHOW and SELECT answer rows, then ReadyForQuery", "[proxy][admin]") {
  auto console = console_over(sample());
  const auto [sql, expected] = GENERATE(table<std::string, std::string>({
      {"SHOW POOLS", "TDCZ"},
      {"show pools;", "TDCZ"},
      {"  SHOW   STATS ", "TDCZ"},
      {"SELECT STATS_TOTALS", "TDCZ"},
      {"SHOW VERSION", "TDCZ"},
      {"SHOW STATE", "TDDDCZ"},
      {"SHOW MEM", "TCZ"},
      {"SHOW USERS", "TDCZ"},
      {"SHOW DATABASES", "TDCZ"},
      {"", "IZ"},
      {"SELECT 1", "EZ"},
      {"SHOW NOTHING", "EZ"},
  }));
  CAPTURE(sql);
  CHECK(types(answer(console, frontend('Q', cstr(sql)))) == expected);
}

TEST_CASE("admin tables: every SHOW has PgBouncer's column count", "[proxy][admin]") {
  // The names and types themselves are compared with a running PgBouncer 1.25 in
  // tests/integration/test_console_columns.py; this catches a table losing a column.
  const auto [what, columns] = GENERATE(table<std::string, std::size_t>({
      {"POOLS", 17},
      {"STATS", 26},
      {"STATS_TOTALS", 13},
      {"STATS_AVERAGES", 13},
      {"CLIENTS", 21},
      {"SERVERS", 21},
      {"DATABASES", 18},
      {"USERS", 8},
      {"LISTS", 2},
      {"CONFIG", 4},
      {"VERSION", 1},
      {"STATE", 2},
      {"MEM", 5},
  }));
  CAPTURE(what);
  const auto table = sluice::proxy::show_table(what, sample());
  REQUIRE(table);
  CHECK(table->columns.size() == columns);
  for (const auto& row : table->rows) CHECK(row.size() == columns);
}

TEST_CASE("admin tables: SHOW POOLS and STATS_TOTALS carry the pool's counts", "[proxy][admin]") {
  const auto pools = sluice::proxy::show_table("POOLS", sample());
  REQUIRE(pools->rows.size() == 1);
  const auto& row = pools->rows[0];
  CHECK(row[0] == "app");
  CHECK(row[1] == "alice");
  CHECK(row[3] == "4");   // cl_waiting
  CHECK(row[6] == "3");   // sv_active
  CHECK(row[9] == "2");   // sv_idle
  CHECK(row[12] == "1");  // sv_login
  CHECK(row[15] == "transaction");
  const auto totals = sluice::proxy::show_table("STATS_TOTALS", sample());
  REQUIRE(totals->rows.size() == 1);
  CHECK(totals->rows[0][3] == "12");  // query_count
}

TEST_CASE("admin console: the extended protocol answers as PostgreSQL would", "[proxy][admin]") {
  auto console = console_over(sample());
  const auto binds_with = [](std::string formats) {
    // portal "", statement "", no parameter formats, no parameters, then the result formats.
    return frontend('B', cstr("") + cstr("") + std::string("\0\0\0\0", 4) + formats);
  };
  CHECK(types(answer(console,
                     frontend('P', cstr("") + cstr("SHOW LISTS") + std::string(2, '\0')))) == "1");
  CHECK(types(answer(console, binds_with(std::string("\0\0", 2)))) == "2");
  CHECK(types(answer(console, frontend('D', "P" + cstr("")))) == "T");
  CHECK(types(answer(console, frontend('E', cstr("") + std::string(4, '\0')))) ==
        "DDDDDDDDDDDDDDC");
  CHECK(types(answer(console, frontend('S', ""))) == "Z");

  SECTION("binary int4 results where Bind asks for them") {
    answer(console, frontend('P', cstr("") + cstr("SHOW LISTS") + std::string(2, '\0')));
    answer(console, binds_with(std::string("\0\1\0\1", 4)));
    const auto reply = answer(console, frontend('E', cstr("") + std::string(4, '\0')));
    const auto rows = messages(reply);
    REQUIRE(rows.size() == 15);
    // "databases" (text, as binary text is its bytes), then int4 1 in four bytes.
    const std::string body(rows[0].body.begin(), rows[0].body.end());
    CHECK(body.substr(body.size() - 8) == std::string("\0\0\0\4\0\0\0\1", 8));
  }
  SECTION("an error skips to Sync, then the session goes on") {
    CHECK(types(answer(console, frontend('B', cstr("") + cstr("nope") + std::string(6, '\0')))) ==
          "E");
    CHECK(answer(console, frontend('E', cstr("") + std::string(4, '\0'))).empty());
    CHECK(types(answer(console, frontend('S', ""))) == "Z");
    CHECK(types(answer(console, frontend('Q', cstr("SHOW VERSION")))) == "TDCZ");
  }
}

TEST_CASE("metrics: gauges per pool and state, labels escaped", "[proxy][metrics]") {
  auto snapshot = sample();
  const auto text = sluice::proxy::render_metrics(snapshot);
  CHECK(text.find("sluice_clients 42\n") != std::string::npos);
  CHECK(text.find("sluice_pool_servers{database=\"app\",user=\"alice\",state=\"idle\"} 2\n") !=
        std::string::npos);
  snapshot.pools[0].database = "we\"ird\\db";
  const auto escaped = sluice::proxy::render_metrics(snapshot);
  CHECK(escaped.find("database=\"we\\\"ird\\\\db\"") != std::string::npos);
}

TEST_CASE("admin console: only admin_users and stats_users get in", "[proxy][admin]") {
  using sluice::proxy::console_access;
  using sluice::proxy::console_access_of;
  sluice::config::settings settings;
  settings.users = {{"root", "pw"}, {"watcher", "pw"}, {"both", "pw"}, {"app", "pw"}};
  // The default: nobody.
  for (const auto* user : {"root", "watcher", "app", "no_such_user"}) {
    CAPTURE(user);
    CHECK(console_access_of(settings, user) == console_access::none);
  }
  settings.admin_users = {"root", "both"};
  settings.stats_users = {"watcher", "both"};
  CHECK(console_access_of(settings, "root") == console_access::admin);
  CHECK(console_access_of(settings, "both") == console_access::admin);  // admin wins
  CHECK(console_access_of(settings, "watcher") == console_access::stats);
  CHECK(console_access_of(settings, "app") == console_access::none);
  CHECK(console_access_of(settings, "Root") == console_access::none);  // exact, as PostgreSQL
  CHECK(console_access_of(settings, "") == console_access::none);
}

TEST_CASE("admin console: commands change the controls, for admin_users only", "[proxy][admin]") {
  sluice::proxy::console_controls controls;
  const auto snapshot = sample();
  admin_console admin(
      console_access::admin, [snapshot] { return snapshot; }, &controls);
  admin_console stats(
      console_access::stats, [snapshot] { return snapshot; }, &controls);

  CHECK(types(answer(stats, frontend('Q', cstr("PAUSE app")))) == "EZ");
  CHECK_FALSE(controls.paused("app"));

  CHECK(types(answer(admin, frontend('Q', cstr("pause app;")))) == "CZ");
  CHECK(controls.paused("app"));
  const auto wait = admin.take_release_wait();
  REQUIRE(wait);
  CHECK(wait->database == "app");
  CHECK_FALSE(admin.take_release_wait());  // taken once

  CHECK(types(answer(admin, frontend('Q', cstr("RESUME")))) == "CZ");
  CHECK_FALSE(controls.paused("app"));
  CHECK(types(answer(admin, frontend('Q', cstr("DISABLE app")))) == "CZ");
  CHECK(controls.disabled("app"));
  CHECK(types(answer(admin, frontend('Q', cstr("ENABLE \"app\"")))) == "CZ");
  CHECK_FALSE(controls.disabled("app"));

  // An unknown database, a missing argument, and what is not there yet.
  CHECK(types(answer(admin, frontend('Q', cstr("PAUSE App")))) == "EZ");  // names are exact
  CHECK(types(answer(admin, frontend('Q', cstr("DISABLE")))) == "EZ");
  CHECK(types(answer(admin, frontend('Q', cstr("RELOAD")))) == "EZ");
  CHECK_FALSE(controls.paused("App"));
}
