#include "pool/server_statement_cache.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sluice::pool {
namespace {

statement_ptr make_statement(std::uint64_t id) {
  auto statement = std::make_shared<prepared_statement>();
  statement->id = id;
  statement->server_name = "sluice_" + std::to_string(id);
  statement->query = "SELECT " + std::to_string(id);
  return statement;
}

std::vector<std::uint64_t> ids_of(const std::vector<statement_ptr>& statements) {
  std::vector<std::uint64_t> ids;
  for (const auto& s : statements) ids.push_back(s->id);
  return ids;
}

// The eviction order the cache would follow from here: fills it with fresh statements until
// everything that was there has gone, and returns the ids in the order they went.
std::vector<std::uint64_t> lru_order(server_statement_cache cache) {
  std::vector<std::uint64_t> order;
  const auto n = cache.size();
  for (std::uint64_t fresh = 1000; order.size() < n; ++fresh)
    for (auto& evicted : cache.insert(make_statement(fresh))) order.push_back(evicted->id);
  return order;
}

TEST_CASE("server_statement_cache: insert below capacity evicts nothing", "[pool][statements]") {
  server_statement_cache cache(3);
  CHECK(cache.capacity() == 3);
  for (std::uint64_t id : {1, 2, 3}) CHECK(cache.insert(make_statement(id)).empty());
  CHECK(cache.size() == 3);
  for (std::uint64_t id : {1, 2, 3}) CHECK(cache.contains(id));
  CHECK_FALSE(cache.contains(4));
  CHECK(lru_order(cache) == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("server_statement_cache: insert at capacity returns the least recently used",
          "[pool][statements]") {
  server_statement_cache cache(2);
  auto s1 = make_statement(1);
  cache.insert(s1);
  cache.insert(make_statement(2));
  const auto evicted = cache.insert(make_statement(3));
  REQUIRE(evicted.size() == 1);
  CHECK(evicted[0] == s1);  // the same object: the caller closes it by its server name
  CHECK_FALSE(cache.contains(1));
  CHECK(cache.contains(2));
  CHECK(cache.contains(3));
  CHECK(cache.size() == 2);
}

TEST_CASE("server_statement_cache: touch moves a statement to the front", "[pool][statements]") {
  server_statement_cache cache(3);
  for (std::uint64_t id : {1, 2, 3}) cache.insert(make_statement(id));
  const auto touched = GENERATE(as<std::uint64_t>{}, 1, 2, 3);
  cache.touch(touched);
  std::vector<std::uint64_t> expected;
  for (std::uint64_t id : {1, 2, 3})
    if (id != touched) expected.push_back(id);
  expected.push_back(touched);
  CHECK(lru_order(cache) == expected);
}

TEST_CASE("server_statement_cache: touch of an absent id changes nothing", "[pool][statements]") {
  server_statement_cache cache(2);
  cache.insert(make_statement(1));
  cache.insert(make_statement(2));
  cache.touch(7);
  CHECK(cache.size() == 2);
  CHECK(lru_order(cache) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("server_statement_cache: inserting a present statement touches it",
          "[pool][statements]") {
  server_statement_cache cache(2);
  cache.insert(make_statement(1));
  cache.insert(make_statement(2));
  CHECK(cache.insert(make_statement(1)).empty());
  CHECK(cache.size() == 2);
  CHECK(ids_of(cache.insert(make_statement(3))) == std::vector<std::uint64_t>{2});
}

TEST_CASE("server_statement_cache: capacity 1 keeps only the newest", "[pool][statements]") {
  server_statement_cache cache(1);
  CHECK(cache.insert(make_statement(1)).empty());
  CHECK(ids_of(cache.insert(make_statement(2))) == std::vector<std::uint64_t>{1});
  CHECK(ids_of(cache.insert(make_statement(3))) == std::vector<std::uint64_t>{2});
  CHECK(cache.size() == 1);
  CHECK(cache.contains(3));
}

TEST_CASE("server_statement_cache: erase returns the statement once", "[pool][statements]") {
  server_statement_cache cache(3);
  auto s2 = make_statement(2);
  cache.insert(make_statement(1));
  cache.insert(s2);
  cache.insert(make_statement(3));
  CHECK(cache.erase(2) == s2);
  CHECK_FALSE(cache.contains(2));
  CHECK(cache.erase(2) == nullptr);
  CHECK(cache.erase(42) == nullptr);
  CHECK(cache.size() == 2);
  CHECK(lru_order(cache) == std::vector<std::uint64_t>{1, 3});
}

TEST_CASE("server_statement_cache: restore puts an evicted statement back as least recent",
          "[pool][statements]") {
  server_statement_cache cache(2);
  cache.insert(make_statement(1));
  cache.insert(make_statement(2));
  auto evicted = cache.insert(make_statement(3));
  REQUIRE(ids_of(evicted) == std::vector<std::uint64_t>{1});
  // Its Close was skipped: the server still has it.
  cache.restore(evicted[0]);
  CHECK(cache.contains(1));
  CHECK(cache.size() == 3);  // over capacity until the next insert
  CHECK(lru_order(cache) == std::vector<std::uint64_t>{1, 2, 3});
  // The next insert brings it back within capacity, oldest first.
  CHECK(ids_of(cache.insert(make_statement(4))) == std::vector<std::uint64_t>{1, 2});
  CHECK(cache.size() == 2);
}

TEST_CASE("server_statement_cache: restore of a present statement changes nothing",
          "[pool][statements]") {
  server_statement_cache cache(3);
  auto s1 = make_statement(1);
  cache.insert(s1);
  cache.insert(make_statement(2));
  cache.restore(s1);
  CHECK(cache.size() == 2);
  CHECK(lru_order(cache) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("server_statement_cache: a stale statement leaves the cache and is taken once",
          "[pool][statements]") {
  server_statement_cache cache(3);
  cache.insert(make_statement(1));
  cache.insert(make_statement(2));
  cache.mark_stale(1);
  CHECK_FALSE(cache.contains(1));
  CHECK(cache.size() == 1);
  CHECK(cache.take_stale(1));
  CHECK_FALSE(cache.take_stale(1));
  CHECK_FALSE(cache.take_stale(2));
}

TEST_CASE("server_statement_cache: only a cached statement can become stale",
          "[pool][statements]") {
  server_statement_cache cache(3);
  cache.mark_stale(9);  // not on this server: there is nothing to close
  CHECK_FALSE(cache.take_stale(9));
}

TEST_CASE("server_statement_cache: clear forgets statements and staleness", "[pool][statements]") {
  server_statement_cache cache(3);
  cache.insert(make_statement(1));
  cache.insert(make_statement(2));
  cache.mark_stale(2);
  cache.clear();
  CHECK(cache.size() == 0);
  CHECK_FALSE(cache.contains(1));
  CHECK_FALSE(cache.take_stale(2));
  CHECK(cache.insert(make_statement(3)).empty());
}

}  // namespace
}  // namespace sluice::pool
