// pool_counters: what leases, waits and logins add up to, read back whole; histogram buckets;
// SQLSTATE classes; and many threads adding at once (the sum is exact).
#include "pool/pool_counters.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

namespace sluice::pool {
namespace {

TEST_CASE("duration_histogram: each observation lands in the first bucket it fits",
          "[pool][counters]") {
  const auto [us, bucket] = GENERATE(table<std::uint64_t, std::size_t>({
      {0, 0},
      {100, 0},
      {101, 1},
      {250, 1},
      {999, 3},
      {1'000, 3},
      {10'000'000, 15},
      {10'000'001, 16},
  }));
  CAPTURE(us);
  duration_histogram h;
  h.observe(us);
  CHECK(h.buckets[bucket] == 1);
  CHECK(h.count == 1);
  CHECK(h.sum_us == us);
}

TEST_CASE("pool_counters: leases, waits, logins and closes add up", "[pool][counters]") {
  pool_counters counters;
  lease_counters lease;
  lease.totals = {.transactions = 2,
                  .queries = 3,
                  .bytes_received = 100,
                  .bytes_sent = 900,
                  .transaction_us = 50,
                  .query_us = 40,
                  .client_parses = 1,
                  .cache_hits = 1};
  lease.query_times.observe(10);
  lease.query_times.observe(30);
  lease.transaction_times.observe(50);
  counters.add(lease);
  counters.add(lease);
  counters.add_wait(700);
  counters.add_login(2'000);
  counters.count_open();
  counters.count_close(server_close_reason::recycle);
  counters.count_close(server_close_reason::recycle);
  counters.count_close(server_close_reason::pre_ping_failed);

  const auto view = counters.load();
  CHECK(view.totals.transactions == 4);
  CHECK(view.totals.queries == 6);
  CHECK(view.totals.bytes_received == 200);
  CHECK(view.totals.bytes_sent == 1800);
  CHECK(view.totals.transaction_us == 100);
  CHECK(view.totals.query_us == 80);
  CHECK(view.totals.client_parses == 2);
  CHECK(view.totals.cache_hits == 2);
  CHECK(view.totals.server_assignments == 1);
  CHECK(view.totals.wait_us == 700);
  CHECK(view.totals.logins == 1);
  CHECK(view.query_times.count == 4);
  CHECK(view.query_times.sum_us == 80);
  CHECK(view.transaction_times.count == 2);
  CHECK(view.wait_times.count == 1);
  CHECK(view.login_times.sum_us == 2'000);
  CHECK(view.servers_opened == 1);
  CHECK(view.servers_closed[static_cast<std::size_t>(server_close_reason::recycle)] == 2);
  CHECK(view.servers_closed[static_cast<std::size_t>(server_close_reason::pre_ping_failed)] == 1);
  CHECK(view.servers_closed[static_cast<std::size_t>(server_close_reason::idle)] == 0);
}

TEST_CASE("pool_counters: threads adding at once lose nothing", "[pool][counters]") {
  pool_counters counters;
  constexpr int per_thread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        counters.add(pool_totals{.queries = 1, .bytes_sent = 3});
        counters.add_wait(1);
      }
    });
  for (auto& thread : threads) thread.join();
  const auto view = counters.load();
  CHECK(view.totals.queries == 4 * per_thread);
  CHECK(view.totals.bytes_sent == 12 * per_thread);
  CHECK(view.wait_times.count == 4 * per_thread);
}

TEST_CASE("sqlstate classes: two characters of [0-9A-Z], both ways", "[pool][counters]") {
  CHECK(sqlstate_class_index("00000") == 0);
  CHECK(sqlstate_class_name(sqlstate_class_index("28P01")) == "28");
  CHECK(sqlstate_class_name(sqlstate_class_index("XX000")) == "XX");
  CHECK(sqlstate_class_name(sqlstate_class_index("0A000")) == "0A");
  CHECK(sqlstate_class_index("") == sqlstate_classes);
  CHECK(sqlstate_class_index("x1") == sqlstate_classes);
  error_counters errors;
  errors.count("28P01");
  errors.count("28000");
  errors.count("42601");
  errors.count("??");
  errors.count_classes({static_cast<std::uint16_t>(sqlstate_class_index("57014"))});
  using rows = std::vector<std::pair<std::string, std::uint64_t>>;
  CHECK(errors.load() == rows{{"28", 2}, {"42", 1}, {"57", 1}});
}

TEST_CASE("server close reasons have metric-friendly names", "[pool][counters]") {
  for (std::size_t i = 0; i < server_close_reasons; ++i) {
    const auto name = name_of(static_cast<server_close_reason>(i));
    CAPTURE(i);
    CHECK_FALSE(name.empty());
    CHECK(name.find(' ') == std::string_view::npos);
  }
}

}  // namespace
}  // namespace sluice::pool
