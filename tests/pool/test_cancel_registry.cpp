#include "pool/cancel_registry.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

using sluice::pool::backend_key;
using sluice::pool::cancel_registry;

TEST_CASE("minted keys find their client, and only with the right secret",
          "[pool][cancel_registry]") {
  cancel_registry reg;
  const auto a = reg.mint(100, 0xdeadbeef);
  const auto b = reg.mint(200, 0xdeadbeef);  // same secret: the pid still tells them apart
  CHECK(a.secret_key == 0xdeadbeef);
  CHECK(a.process_id != b.process_id);
  CHECK(reg.find(a) == 100u);
  CHECK(reg.find(b) == 200u);
  CHECK(reg.size() == 2);

  CHECK_FALSE(reg.find({a.process_id, a.secret_key ^ 1}));   // guessed secret
  CHECK_FALSE(reg.find({0, a.secret_key}));                  // unknown pid
  CHECK_FALSE(reg.erase({a.process_id, a.secret_key ^ 1}));  // a wrong secret erases nothing
  CHECK(reg.find(a) == 100u);

  CHECK(reg.erase(a));
  CHECK_FALSE(reg.erase(a));
  CHECK_FALSE(reg.find(a));
  CHECK(reg.find(b) == 200u);
  CHECK(reg.size() == 1);
}

TEST_CASE("minted process ids are unique among live keys and positive as Int32",
          "[pool][cancel_registry]") {
  cancel_registry reg;
  std::mt19937 rng(7);
  std::set<std::uint32_t> pids;
  std::vector<backend_key> live;
  for (std::uint64_t client = 1; client <= 10'000; ++client) {
    const auto key = reg.mint(client, static_cast<std::uint32_t>(rng()));
    CHECK(key.process_id > 0);
    CHECK(key.process_id <= static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max()));
    REQUIRE(pids.insert(key.process_id).second);
    live.push_back(key);
  }
  for (std::uint64_t i = 0; i < live.size(); ++i) REQUIRE(reg.find(live[i]) == i + 1);
}

TEST_CASE("process ids wrap around to 1", "[pool][cancel_registry]") {
  constexpr auto max_pid = static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max());
  cancel_registry reg(max_pid - 1);
  const auto a = reg.mint(1, 11);
  const auto b = reg.mint(2, 22);
  CHECK(a.process_id == max_pid - 1);
  CHECK(b.process_id == max_pid);

  SECTION("after the top comes 1") {
    CHECK(reg.mint(3, 33).process_id == 1u);
  }
  SECTION("keys minted before the wrap stay valid after it") {
    CHECK(reg.erase(a));
    const auto c = reg.mint(3, 33);
    CHECK(c.process_id == 1u);
    CHECK(reg.find(b) == 2u);
    CHECK(reg.find(c) == 3u);
  }
  SECTION("first_pid 0 or out of range starts at 1") {
    CHECK(cancel_registry(0).mint(1, 1).process_id == 1u);
    CHECK(cancel_registry(max_pid + 1).mint(1, 1).process_id == 1u);
  }
}
