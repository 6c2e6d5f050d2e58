// SHOW STATS' averages: rates per second for counts, mean times per query, transaction and
// assignment, over the window PgBouncer uses (one to two stats periods).
#include "pool/stats_window.hpp"

#include <catch2/catch.hpp>

#include "tests/pool/fake_clock.hpp"

namespace sluice::pool {
namespace {

TEST_CASE("averages: counts per second, times per event", "[pool][stats]") {
  const pool_totals base{.server_assignments = 10,
                         .transactions = 10,
                         .queries = 20,
                         .bytes_received = 1'000,
                         .transaction_us = 5'000,
                         .query_us = 4'000,
                         .wait_us = 100};
  const pool_totals now{.server_assignments = 30,
                        .transactions = 30,
                        .queries = 80,
                        .bytes_received = 3'000,
                        .transaction_us = 45'000,
                        .query_us = 64'000,
                        .wait_us = 2'100,
                        .logins = 4};
  const auto avg = averages(now, base, std::chrono::seconds(2));
  CHECK(avg.transactions == 10);  // 20 in 2 s
  CHECK(avg.queries == 30);       // 60 in 2 s
  CHECK(avg.bytes_received == 1'000);
  CHECK(avg.transaction_us == 2'000);  // 40 ms over 20 transactions
  CHECK(avg.query_us == 1'000);        // 60 ms over 60 queries
  CHECK(avg.wait_us == 100);           // 2 ms over 20 assignments
  CHECK(avg.logins == 2);
  CHECK(avg.bytes_sent == 0);
}

TEST_CASE("averages: no time, or nothing happened, is all zero", "[pool][stats]") {
  const pool_totals some{.queries = 5, .query_us = 50};
  CHECK(averages(some, {}, std::chrono::microseconds(0)) == pool_totals{});
  CHECK(averages(some, some, std::chrono::seconds(60)) == pool_totals{});
}

TEST_CASE("stats_window: the base is the reading before last", "[pool][stats]") {
  testing::fake_clock clock;
  stats_window window(clock.now);
  const auto start = clock.now;
  window.roll({.queries = 60}, clock.advance(std::chrono::seconds(60)));
  CHECK(window.older == pool_totals{});
  CHECK(window.older_at == start);
  window.roll({.queries = 180}, clock.advance(std::chrono::seconds(60)));
  CHECK(window.older.queries == 60);
  CHECK(window.older_at == start + std::chrono::seconds(60));
  CHECK(window.newer.queries == 180);
}

}  // namespace
}  // namespace sluice::pool
