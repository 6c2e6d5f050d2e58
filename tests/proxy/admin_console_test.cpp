// The admin console's replies and the metrics text, from a fixed snapshot: no sockets.
#include <catch2/catch.hpp>

#include "protocol/framing.hpp"
#include "proxy/admin_console.hpp"
#include "proxy/metrics_endpoint.hpp"

namespace {

using sluice::proxy::admin_snapshot;

admin_snapshot sample() {
  admin_snapshot snapshot;
  admin_snapshot::pool_row row;
  row.name = "app/alice";
  row.settings.size = 7;
  row.stats = {
      .idle = 2, .active = 3, .connecting = 1, .waiting = 4, .total = 6, .overflow_in_use = 0};
  snapshot.pools.push_back(row);
  snapshot.clients = 42;
  snapshot.prepared_statements = 5;
  snapshot.workers = 2;
  return snapshot;
}

// The message types of a reply, in order.
std::string types(const std::string& reply) {
  std::string out;
  std::span<const char> rest(reply.data(), reply.size());
  while (!rest.empty()) {
    const auto framed = sluice::protocol::frame_message(rest, 1 << 20);
    REQUIRE(framed.status == sluice::protocol::frame_status::complete);
    out.push_back(framed.message.type);
    rest = rest.subspan(framed.message.wire.size());
  }
  return out;
}

}  // namespace

TEST_CASE("admin console: SHOW commands answer rows, then ReadyForQuery", "[proxy][admin]") {
  const auto snapshot = sample();
  const auto [sql, expected] = GENERATE(table<std::string, std::string>({
      {"SHOW POOLS", "TDCZ"},
      {"show pools;", "TDCZ"},
      {"  SHOW   STATS ", "TDCZ"},
      {"SHOW VERSION", "TDCZ"},
      {"SHOW HELP", "TDDDCZ"},
      {"SELECT 1", "EZ"},
      {"SHOW USERS", "EZ"},
  }));
  CAPTURE(sql);
  CHECK(types(sluice::proxy::answer_admin_query(sql, snapshot)) == expected);
}

TEST_CASE("admin console: SHOW POOLS carries the pool's counts", "[proxy][admin]") {
  const auto reply = sluice::proxy::answer_admin_query("SHOW POOLS", sample());
  CHECK(reply.find("app/alice") != std::string::npos);
  CHECK(reply.find("transaction") != std::string::npos);
}

TEST_CASE("metrics: gauges per pool and state, labels escaped", "[proxy][metrics]") {
  auto snapshot = sample();
  const auto text = sluice::proxy::render_metrics(snapshot);
  CHECK(text.find("sluice_clients 42\n") != std::string::npos);
  CHECK(text.find("sluice_pool_servers{pool=\"app/alice\",state=\"idle\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("sluice_pool_servers{pool=\"app/alice\",state=\"active\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("sluice_pool_waiting_clients{pool=\"app/alice\"} 4\n") != std::string::npos);
  CHECK(text.find("sluice_pool_size{pool=\"app/alice\"} 7\n") != std::string::npos);

  snapshot.pools[0].name = "we\"ird\\db/u";
  const auto escaped = sluice::proxy::render_metrics(snapshot);
  CHECK(escaped.find("pool=\"we\\\"ird\\\\db/u\"") != std::string::npos);
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
