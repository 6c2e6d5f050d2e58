#include "pool/server_pool_fsm.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <vector>

#include "fake_clock.hpp"

using namespace std::chrono_literals;
using sluice::pool::duration;
using sluice::pool::pool_limits;
using sluice::pool::server_id;
using sluice::pool::server_pool_fsm;
using sluice::pool::time_point;
using sluice::pool::waiter_id;
using sluice::pool::testing::fake_clock;
using kind = server_pool_fsm::acquire_result::kind;
using decisions = server_pool_fsm::decisions;

namespace Catch {
template <>
struct StringMaker<kind> {
  static std::string convert(kind k) {
    switch (k) {
      case kind::granted:
        return "granted";
      case kind::open_new:
        return "open_new";
      case kind::queued:
        return "queued";
    }
    return "?";
  }
};
}  // namespace Catch

namespace {

// No timers and no warm-up unless a test asks for them.
pool_limits quiet(std::uint32_t size) {
  pool_limits l;
  l.size = size;
  l.min_size = 0;
  l.overflow = 0;
  l.recycle = std::nullopt;
  l.idle_timeout = std::nullopt;
  l.pre_ping = std::nullopt;
  return l;
}

// Acquire for `w`, connecting the slot if one was asked for; returns the server it now holds.
server_id hold(server_pool_fsm& pool, waiter_id w, time_point now) {
  auto r = pool.acquire(w, now);
  if (r.what == kind::granted) return r.server;
  REQUIRE(r.what == kind::open_new);
  auto d = pool.on_open_succeeded(r.server, now);
  REQUIRE(d.grants.size() == 1);
  REQUIRE(d.grants[0].waiter == w);
  REQUIRE(d.grants[0].server == r.server);
  return r.server;
}

std::vector<server_id> opens_of(const decisions& d) {
  std::vector<server_id> ids;
  for (const auto& o : d.opens) ids.push_back(o.server);
  return ids;
}

}  // namespace

TEST_CASE("acquire on an empty pool reserves a slot and the connected server goes to the waiter",
          "[pool][fsm]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(2));

  auto r = pool.acquire(1, clock.now);
  CHECK(r.what == kind::open_new);
  CHECK(r.server != 0);
  auto st = pool.snapshot();
  CHECK(st.connecting == 1);
  CHECK(st.waiting == 1);
  CHECK(st.total == 1);

  auto d = pool.on_open_succeeded(r.server, clock.advance(20ms));
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 1);
  CHECK(d.grants[0].server == r.server);
  CHECK_FALSE(d.grants[0].needs_ping);
  st = pool.snapshot();
  CHECK(st.active == 1);
  CHECK(st.waiting == 0);
  CHECK(st.connecting == 0);

  SECTION("released, it is granted at once to the next client") {
    auto rel = pool.release(r.server, clock.advance(1ms), true);
    CHECK(rel.empty());
    CHECK(pool.snapshot().idle == 1);
    auto again = pool.acquire(2, clock.now);
    CHECK(again.what == kind::granted);
    CHECK(again.server == r.server);
  }
}

TEST_CASE("size is exact: connecting slots count toward it", "[pool][fsm][size]") {
  const std::uint32_t size = GENERATE(1u, 2u, 5u);
  fake_clock clock;
  server_pool_fsm pool(quiet(size));

  std::uint32_t opened = 0;
  for (waiter_id w = 1; w <= size + 3; ++w) {
    auto r = pool.acquire(w, clock.advance(1ms));
    if (r.what == kind::open_new) ++opened;
    CHECK(r.what != kind::granted);
  }
  CHECK(opened == size);
  auto st = pool.snapshot();
  CHECK(st.total == size);
  CHECK(st.connecting == size);
  CHECK(st.waiting == size + 3);
  CHECK(pool.tick(clock.advance(1s)).opens.empty());
  CHECK(pool.snapshot().total == size);
}

TEST_CASE("waiters are served first come, first served", "[pool][fsm][fifo]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(1));
  const server_id s = hold(pool, 1, clock.now);

  for (waiter_id w = 2; w <= 5; ++w)
    CHECK(pool.acquire(w, clock.advance(1ms)).what == kind::queued);

  waiter_id holder = 1;
  for (waiter_id expected = 2; expected <= 5; ++expected) {
    auto d = pool.release(s, clock.advance(1ms), true);
    REQUIRE(d.grants.size() == 1);
    CHECK(d.grants[0].waiter == expected);
    CHECK(d.grants[0].server == s);
    holder = expected;
  }
  CHECK(holder == 5);
  CHECK(pool.release(s, clock.advance(1ms), true).grants.empty());
  CHECK(pool.snapshot().idle == 1);
}

TEST_CASE("a newly connected server goes to the oldest waiter, not the one that asked for it",
          "[pool][fsm][fifo]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(2));
  const server_id s1 = hold(pool, 1, clock.now);

  auto r2 = pool.acquire(2, clock.advance(1ms));  // reserves slot 2
  REQUIRE(r2.what == kind::open_new);
  auto r3 = pool.acquire(3, clock.advance(1ms));  // pool full: waits
  REQUIRE(r3.what == kind::queued);

  // s1 comes back first and goes to waiter 2, the oldest.
  auto d = pool.release(s1, clock.advance(1ms), true);
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 2);

  // Waiter 4 arrives while 3 waits: it queues behind 3.
  CHECK(pool.acquire(4, clock.advance(1ms)).what == kind::queued);
  d = pool.on_open_succeeded(r2.server, clock.advance(1ms));
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 3);
  CHECK(d.grants[0].server == r2.server);
}

TEST_CASE("a newcomer queues behind waiters even when a server comes back at the same instant",
          "[pool][fsm][fifo]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(1));
  const server_id s = hold(pool, 1, clock.now);
  REQUIRE(pool.acquire(2, clock.now).what == kind::queued);
  auto d = pool.release(s, clock.now, true);  // straight to waiter 2, never idle
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 2);
  CHECK(pool.snapshot().idle == 0);
  CHECK(pool.acquire(3, clock.now).what == kind::queued);
}

TEST_CASE("waiters time out after `timeout`", "[pool][fsm][timeout]") {
  fake_clock clock;
  auto limits = quiet(1);
  limits.timeout = 30s;
  server_pool_fsm pool(limits);
  const server_id s = hold(pool, 1, clock.now);

  const time_point t0 = clock.advance(1s);
  auto r = pool.acquire(2, t0);
  REQUIRE(r.what == kind::queued);
  CHECK(r.next_wakeup == t0 + 30s);
  REQUIRE(pool.acquire(3, clock.advance(10s)).what == kind::queued);

  auto d = pool.tick(t0 + 30s - 1ms);
  CHECK(d.timed_out.empty());
  CHECK(d.next_wakeup == t0 + 30s);

  d = pool.tick(t0 + 30s);
  CHECK(d.timed_out == server_pool_fsm::few<waiter_id>{2});
  CHECK(d.next_wakeup == t0 + 40s);  // waiter 3's turn
  CHECK(pool.snapshot().waiting == 1);

  d = pool.tick(t0 + 45s);
  CHECK(d.timed_out == server_pool_fsm::few<waiter_id>{3});
  CHECK(pool.snapshot().waiting == 0);
  CHECK_FALSE(d.next_wakeup);

  // Nobody left to hand the server to: it parks.
  d = pool.release(s, clock.now, true);
  CHECK(d.grants.empty());
  CHECK(pool.snapshot().idle == 1);
}

TEST_CASE("a waiter past its deadline is timed out rather than granted", "[pool][fsm][timeout]") {
  fake_clock clock;
  auto limits = quiet(1);
  limits.timeout = 5s;
  server_pool_fsm pool(limits);
  const server_id s = hold(pool, 1, clock.now);
  REQUIRE(pool.acquire(2, clock.now).what == kind::queued);
  REQUIRE(pool.acquire(3, clock.advance(3s)).what == kind::queued);

  // The timer was late; the release arrives after waiter 2's deadline.
  auto d = pool.release(s, clock.advance(2s), true);
  CHECK(d.timed_out == server_pool_fsm::few<waiter_id>{2});
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 3);
}

TEST_CASE("pre_ping: needs_ping only when idle at least pre_ping", "[pool][fsm][pre_ping]") {
  struct row {
    std::optional<duration> pre_ping;
    duration idle_for;
    bool needs_ping;
  };
  const auto r = GENERATE(values<row>({
      {std::nullopt, 0ms, false},
      {std::nullopt, 24h, false},  // never
      {0ms, 0ms, true},            // always
      {0ms, 1ms, true},
      {30s, 0ms, false},
      {30s, 29'999ms, false},
      {30s, 30s, true},
      {30s, 2h, true},
  }));
  fake_clock clock;
  auto limits = quiet(1);
  limits.pre_ping = r.pre_ping;
  server_pool_fsm pool(limits);
  const server_id s = hold(pool, 1, clock.now);
  REQUIRE(pool.release(s, clock.advance(1s), true).empty());

  auto got = pool.acquire(2, clock.advance(r.idle_for));
  REQUIRE(got.what == kind::granted);
  CHECK(got.needs_ping == r.needs_ping);
}

TEST_CASE("pre_ping applies to hand-overs on release, not to a server that just connected",
          "[pool][fsm][pre_ping]") {
  fake_clock clock;
  auto limits = quiet(1);

  SECTION("pre_ping 0: a fresh connection handed over in the same call needs no ping") {
    limits.pre_ping = 0ms;
    server_pool_fsm pool(limits);
    auto r = pool.acquire(1, clock.now);
    REQUIRE(r.what == kind::open_new);
    auto d = pool.on_open_succeeded(r.server, clock.now);
    REQUIRE(d.grants.size() == 1);
    CHECK_FALSE(d.grants[0].needs_ping);

    // Handed straight from one client to the next: "always" means always.
    REQUIRE(pool.acquire(2, clock.now).what == kind::queued);
    d = pool.release(r.server, clock.now, true);
    REQUIRE(d.grants.size() == 1);
    CHECK(d.grants[0].needs_ping);
  }
  SECTION("pre_ping 0: a fresh connection that was parked is pinged like any other") {
    limits.pre_ping = 0ms;
    limits.min_size = 1;
    server_pool_fsm pool(limits);
    auto d = pool.tick(clock.now);
    REQUIRE(d.opens.size() == 1);
    REQUIRE(pool.on_open_succeeded(d.opens[0].server, clock.now).grants.empty());
    auto r = pool.acquire(1, clock.now);
    REQUIRE(r.what == kind::granted);
    CHECK(r.needs_ping);
  }
  SECTION("pre_ping 30s: a fresh connection parked for 30s needs a ping") {
    limits.pre_ping = 30s;
    limits.min_size = 1;
    server_pool_fsm pool(limits);
    auto d = pool.tick(clock.now);
    REQUIRE(pool.on_open_succeeded(d.opens[0].server, clock.now).grants.empty());
    CHECK_FALSE(pool.acquire(1, clock.now + 29s).needs_ping);
    REQUIRE(pool.release(d.opens[0].server, clock.now + 29s, true).empty());
    CHECK(pool.acquire(2, clock.now + 59s).needs_ping);
  }
  SECTION("pre_ping 30s: a release handed straight to a waiter needs no ping") {
    limits.pre_ping = 30s;
    limits.timeout = 2h;
    server_pool_fsm pool(limits);
    const server_id s = hold(pool, 1, clock.now);
    REQUIRE(pool.acquire(2, clock.now).what == kind::queued);
    auto d = pool.release(s, clock.advance(1h), true);  // in use for an hour, idle for 0
    REQUIRE(d.grants.size() == 1);
    CHECK_FALSE(d.grants[0].needs_ping);
  }
}

TEST_CASE("recycle closes old servers on release and while idle, never while in use",
          "[pool][fsm][recycle]") {
  fake_clock clock;
  auto limits = quiet(2);
  limits.recycle = 1h;
  server_pool_fsm pool(limits);
  const time_point born = clock.now;
  const server_id s = hold(pool, 1, born);

  SECTION("in use past recycle: ticks leave it alone, the release closes it") {
    auto d = pool.tick(born + 2h);
    CHECK(d.closes.empty());
    CHECK(pool.snapshot().active == 1);
    d = pool.release(s, born + 2h, true);
    CHECK(d.closes == server_pool_fsm::few<server_id>{s});
    CHECK(pool.snapshot().total == 0);
  }
  SECTION("released just before recycle it parks, and a tick at the age closes it") {
    auto d = pool.release(s, born + 1h - 1ms, true);
    CHECK(d.closes.empty());
    CHECK(d.next_wakeup == born + 1h);
    CHECK(pool.tick(born + 1h - 1ms).closes.empty());
    d = pool.tick(born + 1h);
    CHECK(d.closes == server_pool_fsm::few<server_id>{s});
    CHECK(pool.snapshot().total == 0);
  }
  SECTION("released past recycle with a waiter: closed, and a new slot opened for the waiter") {
    const server_id s2 = hold(pool, 2, born);
    REQUIRE(pool.acquire(3, born + 1h).what == kind::queued);
    auto d = pool.release(s, born + 1h, true);
    CHECK(d.closes == server_pool_fsm::few<server_id>{s});
    CHECK(d.grants.empty());
    REQUIRE(d.opens.size() == 1);
    CHECK(d.opens[0].server != s);
    CHECK(d.opens[0].server != s2);
  }
  SECTION("acquire prefers a young idle server over one past recycle") {
    const server_id young = hold(pool, 2, born + 30min);
    REQUIRE(pool.release(young, born + 30min, true).empty());
    REQUIRE(pool.release(s, born + 59min, true).empty());  // parked last
    // No tick has closed `s` yet when the next client comes.
    auto r = pool.acquire(3, born + 1h + 1ms);
    CHECK(r.what == kind::granted);
    CHECK(r.server == young);
  }
}

TEST_CASE("recycle below min_size replaces the server", "[pool][fsm][recycle]") {
  fake_clock clock;
  auto limits = quiet(2);
  limits.min_size = 1;
  limits.recycle = 1h;
  server_pool_fsm pool(limits);
  auto d = pool.tick(clock.now);
  REQUIRE(d.opens.size() == 1);
  const server_id s = d.opens[0].server;
  REQUIRE(pool.on_open_succeeded(s, clock.now).empty());
  d = pool.tick(clock.advance(1h));
  CHECK(d.closes == server_pool_fsm::few<server_id>{s});
  REQUIRE(d.opens.size() == 1);
  CHECK(d.opens[0].server != s);
}

TEST_CASE("idle_timeout closes idle servers, longest idle first, down to min_size",
          "[pool][fsm][idle_timeout]") {
  const std::uint32_t min_size = GENERATE(0u, 2u, 5u);
  fake_clock clock;
  auto limits = quiet(5);
  limits.idle_timeout = 10min;
  server_pool_fsm pool(limits);

  std::vector<server_id> servers;
  for (waiter_id w = 1; w <= 5; ++w) servers.push_back(hold(pool, w, clock.now));
  const time_point t0 = clock.now;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    REQUIRE(pool.release(servers[i], t0 + std::chrono::minutes(i), true).closes.empty());
  }
  limits.min_size = min_size;  // set only now, so the holds above opened no warm-up slots
  pool.update_limits(limits);

  // Server 0 has idled 10 minutes at t0 + 10min, server 1 at t0 + 11min, and so on.
  auto d = pool.tick(t0 + 10min - 1ms);
  CHECK(d.closes.empty());
  d = pool.tick(t0 + 11min);
  const std::size_t expect_now = std::min<std::size_t>(2, 5 - min_size);
  CHECK(d.closes == server_pool_fsm::few<server_id>(
                        servers.begin(), servers.begin() + static_cast<long>(expect_now)));
  d = pool.tick(t0 + 24h);
  CHECK(pool.snapshot().total == min_size);
  CHECK(pool.snapshot().idle == min_size);
  CHECK_FALSE(d.next_wakeup);  // at min_size nothing more to time
  CHECK(pool.tick(t0 + 48h).closes.empty());
}

TEST_CASE("min_size warms up on tick and refills after loss", "[pool][fsm][min_size]") {
  fake_clock clock;
  auto limits = quiet(5);
  limits.min_size = 3;
  server_pool_fsm pool(limits);

  auto d = pool.tick(clock.now);
  REQUIRE(d.opens.size() == 3);
  CHECK(pool.snapshot().connecting == 3);
  CHECK(pool.tick(clock.advance(1s)).opens.empty());  // connecting ones count
  for (auto o : d.opens) CHECK(pool.on_open_succeeded(o.server, clock.now).empty());
  CHECK(pool.snapshot().idle == 3);

  const server_id lost = d.opens[1].server;
  d = pool.on_server_lost(lost, clock.advance(1s));
  CHECK(d.closes.size() == 1);
  CHECK(d.opens.size() == 1);
  CHECK(pool.snapshot().total == 3);
}

TEST_CASE("min_size above size acts as size", "[pool][fsm][min_size]") {
  fake_clock clock;
  auto limits = quiet(2);
  limits.min_size = 10;
  server_pool_fsm pool(limits);
  CHECK(pool.tick(clock.now).opens.size() == 2);
}

TEST_CASE("failed connects back off, doubling to the maximum, and reset on success",
          "[pool][fsm][backoff]") {
  fake_clock clock;
  auto limits = quiet(5);
  limits.min_size = 1;
  server_pool_fsm pool(limits);

  auto d = pool.tick(clock.now);
  REQUIRE(d.opens.size() == 1);
  server_id slot = d.opens[0].server;
  const std::vector<duration> delays = {500ms, 1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
  for (const auto delay : delays) {
    d = pool.on_open_failed(slot, clock.advance(100ms));
    CAPTURE(delay);
    CHECK(d.opens.empty());
    CHECK(d.next_wakeup == clock.now + delay);
    CHECK(pool.tick(clock.now + delay - 1ms).opens.empty());
    d = pool.tick(clock.advance(delay));
    REQUIRE(d.opens.size() == 1);
    slot = d.opens[0].server;
  }
  CHECK(pool.on_open_succeeded(slot, clock.advance(100ms)).empty());

  // The first failure after a success starts over at the initial delay.
  d = pool.on_server_lost(slot, clock.now);
  REQUIRE(d.opens.size() == 1);
  d = pool.on_open_failed(d.opens[0].server, clock.advance(100ms));
  CHECK(d.next_wakeup == clock.now + 500ms);
}

TEST_CASE("connects started together and failing together count as one failure",
          "[pool][fsm][backoff]") {
  fake_clock clock;
  auto limits = quiet(5);
  limits.min_size = 3;
  server_pool_fsm pool(limits);
  auto d = pool.tick(clock.now);
  REQUIRE(d.opens.size() == 3);
  const auto slots = opens_of(d);
  d = pool.on_open_failed(slots[0], clock.advance(10ms));
  CHECK(d.next_wakeup == clock.now + 500ms);
  // Later failures of the same burst extend the window but do not double it.
  d = pool.on_open_failed(slots[1], clock.advance(10ms));
  CHECK(d.next_wakeup == clock.now + 500ms);
  d = pool.on_open_failed(slots[2], clock.advance(10ms));
  CHECK(d.next_wakeup == clock.now + 500ms);
  d = pool.tick(clock.advance(500ms));
  CHECK(d.opens.size() == 3);
}

TEST_CASE("during backoff waiters queue without new connects and time out as usual",
          "[pool][fsm][backoff]") {
  fake_clock clock;
  auto limits = quiet(3);
  limits.timeout = 2s;
  server_pool_fsm pool(limits);
  auto r = pool.acquire(1, clock.now);
  REQUIRE(r.what == kind::open_new);
  auto d = pool.on_open_failed(r.server, clock.advance(100ms));
  CHECK(d.opens.empty());
  CHECK(d.timed_out.empty());
  CHECK(d.next_wakeup == clock.now + 500ms);
  CHECK(pool.snapshot().waiting == 1);

  CHECK(pool.acquire(2, clock.advance(100ms)).what == kind::queued);
  d = pool.tick(clock.advance(400ms));  // backoff over: one slot per unserved waiter
  const auto slots = opens_of(d);
  CHECK(slots.size() == 2);
  for (auto id : slots) d = pool.on_open_failed(id, clock.now + 1ms);
  CHECK(d.next_wakeup == clock.now + 1ms + 1s);  // a new failure: doubled
  // Waiter 1 asked 2s ago and times out; waiter 2 still has time and gets a slot again.
  d = pool.tick(clock.now + 1500ms);
  CHECK(d.timed_out == server_pool_fsm::few<waiter_id>{1});
  CHECK(d.opens.size() == 1);
  CHECK(pool.snapshot().waiting == 1);
}

TEST_CASE("overflow opens only after overflow_after and closes servers once idle",
          "[pool][fsm][overflow]") {
  fake_clock clock;
  auto limits = quiet(1);
  limits.overflow = 2;
  limits.overflow_after = 5s;
  limits.timeout = 60s;
  server_pool_fsm pool(limits);
  const server_id s1 = hold(pool, 1, clock.now);

  const time_point t0 = clock.advance(1s);
  auto r = pool.acquire(2, t0);
  CHECK(r.what == kind::queued);
  CHECK(r.next_wakeup == t0 + 5s);
  CHECK(pool.tick(t0 + 5s - 1ms).opens.empty());
  auto d = pool.tick(t0 + 5s);
  REQUIRE(d.opens.size() == 1);  // one unserved waiter, one slot
  const server_id o1 = d.opens[0].server;

  auto r3 = pool.acquire(3, t0 + 5s);
  REQUIRE(r3.what == kind::open_new);
  CHECK(pool.acquire(4, t0 + 5s).what == kind::queued);  // size + overflow reached
  CHECK(pool.tick(t0 + 10s).opens.empty());
  CHECK(pool.snapshot().total == 3);
  CHECK(pool.snapshot().overflow_in_use == 2);

  d = pool.on_open_succeeded(o1, t0 + 11s);
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 2);
  d = pool.on_open_succeeded(r3.server, t0 + 11s);
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 3);

  // With a waiter left, a released server goes to it even though the pool is over size.
  d = pool.release(o1, t0 + 12s, true);
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 4);
  // With no waiter, servers beyond size close instead of parking.
  CHECK(pool.release(r3.server, t0 + 13s, true).closes ==
        server_pool_fsm::few<server_id>{r3.server});
  CHECK(pool.release(s1, t0 + 13s, true).closes == server_pool_fsm::few<server_id>{s1});
  CHECK(pool.release(o1, t0 + 13s, true).closes.empty());
  auto st = pool.snapshot();
  CHECK(st.total == 1);
  CHECK(st.idle == 1);
  CHECK(st.overflow_in_use == 0);
}

TEST_CASE("overflow_after 0 opens overflow at once, and overflow 0 never does",
          "[pool][fsm][overflow]") {
  const std::uint32_t overflow = GENERATE(0u, 1u);
  fake_clock clock;
  auto limits = quiet(1);
  limits.overflow = overflow;
  limits.overflow_after = 0ms;
  server_pool_fsm pool(limits);
  hold(pool, 1, clock.now);
  auto r = pool.acquire(2, clock.now);
  CHECK(r.what == (overflow ? kind::open_new : kind::queued));
  CHECK(pool.acquire(3, clock.now).what == kind::queued);
  CHECK(pool.tick(clock.advance(1h)).opens.empty());
  CHECK(pool.snapshot().total == 1 + overflow);
}

TEST_CASE("an overflow slot that connects after its waiter was served closes",
          "[pool][fsm][overflow]") {
  fake_clock clock;
  auto limits = quiet(1);
  limits.overflow = 1;
  limits.overflow_after = 0ms;
  server_pool_fsm pool(limits);
  const server_id s1 = hold(pool, 1, clock.now);
  auto r = pool.acquire(2, clock.now);
  REQUIRE(r.what == kind::open_new);
  REQUIRE(pool.release(s1, clock.now, true).grants.size() == 1);  // waiter 2 served by s1
  auto d = pool.on_open_succeeded(r.server, clock.now);
  CHECK(d.grants.empty());
  CHECK(d.closes == server_pool_fsm::few<server_id>{r.server});
  CHECK(pool.snapshot().total == 1);
}

TEST_CASE("a failed pre-ping is replaced without the waiter seeing it", "[pool][fsm][pre_ping]") {
  fake_clock clock;
  auto limits = quiet(2);
  limits.pre_ping = 0ms;
  server_pool_fsm pool(limits);
  const server_id s1 = hold(pool, 1, clock.now);

  SECTION("no other server: the dead one's slot is reopened for the waiter") {
    REQUIRE(pool.release(s1, clock.advance(1s), true).empty());
    auto r = pool.acquire(2, clock.advance(1s));
    REQUIRE(r.what == kind::granted);
    REQUIRE(r.needs_ping);
    auto d = pool.on_ping_failed(s1, clock.advance(10ms));
    CHECK(d.closes == server_pool_fsm::few<server_id>{s1});
    CHECK(d.timed_out.empty());
    REQUIRE(d.opens.size() == 1);
    CHECK(pool.snapshot().waiting == 1);
    d = pool.on_open_succeeded(d.opens[0].server, clock.advance(10ms));
    REQUIRE(d.grants.size() == 1);
    CHECK(d.grants[0].waiter == 2);
    CHECK_FALSE(d.grants[0].needs_ping);
  }
  SECTION("another idle server: the waiter gets it in the same call") {
    const server_id s2 = hold(pool, 2, clock.now);
    REQUIRE(pool.release(s1, clock.advance(1s), true).empty());
    REQUIRE(pool.release(s2, clock.advance(1s), true).empty());
    auto r = pool.acquire(3, clock.advance(1s));
    REQUIRE(r.server == s2);  // most recently parked
    auto d = pool.on_ping_failed(s2, clock.now);
    CHECK(d.closes == server_pool_fsm::few<server_id>{s2});
    REQUIRE(d.grants.size() == 1);
    CHECK(d.grants[0].waiter == 3);
    CHECK(d.grants[0].server == s1);
    CHECK(d.grants[0].needs_ping);
  }
  SECTION("the waiter keeps its place ahead of later arrivals and its original deadline") {
    const server_id s2 = hold(pool, 2, clock.now);
    REQUIRE(pool.release(s1, clock.advance(1s), true).empty());
    const time_point asked = clock.advance(1s);
    REQUIRE(pool.acquire(3, asked).server == s1);
    REQUIRE(pool.acquire(4, clock.advance(1s)).what == kind::queued);  // pool full
    auto d = pool.on_ping_failed(s1, clock.now);
    REQUIRE(d.opens.size() == 1);
    CHECK(d.next_wakeup == asked + 30s);
    d = pool.on_open_succeeded(d.opens[0].server, clock.now);
    REQUIRE(d.grants.size() == 1);
    CHECK(d.grants[0].waiter == 3);
    d = pool.release(s2, clock.now, true);
    REQUIRE(d.grants.size() == 1);
    CHECK(d.grants[0].waiter == 4);
  }
}

TEST_CASE("cancel_wait removes a queued waiter", "[pool][fsm][cancel]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(1));
  const server_id s = hold(pool, 1, clock.now);
  REQUIRE(pool.acquire(2, clock.now).what == kind::queued);
  REQUIRE(pool.acquire(3, clock.now).what == kind::queued);
  pool.cancel_wait(2);
  pool.cancel_wait(2);   // twice: no-op
  pool.cancel_wait(99);  // unknown: no-op
  CHECK(pool.snapshot().waiting == 1);
  auto d = pool.release(s, clock.now, true);
  REQUIRE(d.grants.size() == 1);
  CHECK(d.grants[0].waiter == 3);
  pool.cancel_wait(3);  // already granted: no-op, the daemon releases the server
  CHECK(pool.snapshot().active == 1);

  SECTION("a cancelled waiter's reserved slot parks when it connects") {
    REQUIRE(pool.release(s, clock.now, true).empty());
    server_pool_fsm fresh(quiet(2));
    auto r = fresh.acquire(7, clock.now);
    REQUIRE(r.what == kind::open_new);
    fresh.cancel_wait(7);
    d = fresh.on_open_succeeded(r.server, clock.now);
    CHECK(d.empty());
    CHECK(fresh.snapshot().idle == 1);
  }
}

TEST_CASE("release with reusable=false closes the server and makes room", "[pool][fsm]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(1));
  const server_id s = hold(pool, 1, clock.now);

  SECTION("nobody waiting") {
    auto d = pool.release(s, clock.now, false);
    CHECK(d.closes == server_pool_fsm::few<server_id>{s});
    CHECK(d.opens.empty());
    CHECK(pool.snapshot().total == 0);
  }
  SECTION("a waiter gets a new slot") {
    REQUIRE(pool.acquire(2, clock.now).what == kind::queued);
    auto d = pool.release(s, clock.now, false);
    CHECK(d.closes == server_pool_fsm::few<server_id>{s});
    CHECK(d.grants.empty());
    REQUIRE(d.opens.size() == 1);
    CHECK(pool.on_open_succeeded(d.opens[0].server, clock.now).grants.at(0).waiter == 2);
  }
}

TEST_CASE("a server lost while idle is dropped", "[pool][fsm]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(2));
  const server_id s = hold(pool, 1, clock.now);
  REQUIRE(pool.release(s, clock.now, true).empty());
  auto d = pool.on_server_lost(s, clock.now);
  CHECK(d.closes == server_pool_fsm::few<server_id>{s});
  CHECK(pool.snapshot().total == 0);
  CHECK(pool.acquire(2, clock.now).what == kind::open_new);
}

TEST_CASE("update_limits: a smaller size closes idle surplus on tick and busy surplus on release",
          "[pool][fsm][reload]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(3));
  const server_id a = hold(pool, 1, clock.now);
  const server_id b = hold(pool, 2, clock.now);
  const server_id c = hold(pool, 3, clock.now);
  REQUIRE(pool.release(a, clock.now, true).empty());

  pool.update_limits(quiet(1));
  CHECK(pool.limits().size == 1);
  auto d = pool.tick(clock.now);
  CHECK(d.closes == server_pool_fsm::few<server_id>{a});
  CHECK(pool.snapshot().total == 2);
  d = pool.release(b, clock.now, true);
  CHECK(d.closes == server_pool_fsm::few<server_id>{b});
  d = pool.release(c, clock.now, true);
  CHECK(d.closes.empty());  // back to size: parks
  CHECK(pool.snapshot().total == 1);
  CHECK(pool.snapshot().idle == 1);
}

TEST_CASE("stale or unknown ids are ignored", "[pool][fsm]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(1));
  const server_id s = hold(pool, 1, clock.now);
  CHECK(pool.on_open_succeeded(s, clock.now).empty());  // not connecting
  CHECK(pool.on_open_failed(s, clock.now).empty());
  CHECK(pool.release(42, clock.now, true).empty());
  CHECK(pool.on_ping_failed(42, clock.now).empty());
  CHECK(pool.on_server_lost(42, clock.now).empty());
  REQUIRE(pool.release(s, clock.now, true).empty());
  CHECK(pool.release(s, clock.now, true).empty());  // released twice
  CHECK(pool.snapshot().idle == 1);
  CHECK(pool.snapshot().total == 1);
}

TEST_CASE("a waiter id already queued is not queued twice", "[pool][fsm]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(1));
  hold(pool, 1, clock.now);
  CHECK(pool.acquire(2, clock.now).what == kind::queued);
  CHECK(pool.acquire(2, clock.now).what == kind::queued);
  CHECK(pool.snapshot().waiting == 1);
}

TEST_CASE("time never runs backwards inside the fsm", "[pool][fsm]") {
  fake_clock clock;
  auto limits = quiet(1);
  limits.timeout = 5s;
  server_pool_fsm pool(limits);
  hold(pool, 1, clock.now);
  REQUIRE(pool.acquire(2, clock.now + 10s).what == kind::queued);
  // A thread that read the clock earlier arrives late: its `now` counts as the latest seen,
  // so waiter 3 is not older than waiter 2 and FIFO order stays time order.
  REQUIRE(pool.acquire(3, clock.now).what == kind::queued);
  CHECK(pool.tick(clock.now).timed_out.empty());
  CHECK(pool.tick(clock.now + 15s - 1ms).timed_out.empty());
  CHECK(pool.tick(clock.now + 15s).timed_out == server_pool_fsm::few<waiter_id>{2, 3});
}

TEST_CASE("next_wakeup is empty for a quiet pool", "[pool][fsm]") {
  fake_clock clock;
  server_pool_fsm pool(quiet(2));
  CHECK_FALSE(pool.tick(clock.now).next_wakeup);
  const server_id s = hold(pool, 1, clock.now);
  CHECK_FALSE(pool.release(s, clock.now, true).next_wakeup);
}

// One server, held by waiter 500, with waiters first..last queued behind it; `same_thread`
// says which of them share the server's thread.
struct affinity_line {
  fake_clock clock;
  server_pool_fsm pool{quiet(1)};
  server_id server = 0;

  affinity_line(server_pool_fsm::affinity_function same_thread, waiter_id first, waiter_id last) {
    pool.set_affinity(std::move(same_thread));
    server = hold(pool, 500, clock.now);
    for (waiter_id w = first; w <= last; ++w)
      REQUIRE(pool.acquire(w, clock.now).what == kind::queued);
  }
  // The server is released; returns who got it.
  waiter_id next() {
    auto d = pool.release(server, clock.now, true);
    REQUIRE(d.grants.size() == 1);
    return d.grants[0].waiter;
  }
};

TEST_CASE("affinity: a released server goes to a waiter on its thread, head skipped boundedly",
          "[pool][fsm][affinity]") {
  // Even waiters live on the server's thread, odd ones elsewhere.
  affinity_line line([](server_id, waiter_id w) { return w % 2 == 0; }, 1, 40);
  std::vector<waiter_id> served;
  for (int round = 0; round < 12; ++round) served.push_back(line.next());
  // Same-thread (even) waiters first, in their own arrival order, while one is among the
  // first 8 in line; when none is, the head is served. Waiter 1 is passed over 7 times.
  const std::vector<waiter_id> expected = {2, 4, 6, 8, 10, 12, 14, 1, 16, 3, 18, 5};
  CHECK(served == expected);
}

TEST_CASE("affinity: with no waiter on the server's thread within lookahead, FIFO",
          "[pool][fsm][affinity]") {
  affinity_line line([](server_id, waiter_id w) { return w >= 1000; }, 1,
                     server_pool_fsm::affinity_lookahead);
  REQUIRE(line.pool.acquire(1000, line.clock.now).what == kind::queued);  // beyond the lookahead
  CHECK(line.next() == 1);
}

TEST_CASE("affinity: the head of the line is passed over at most max_head_skips times",
          "[pool][fsm][affinity]") {
  affinity_line line([](server_id, waiter_id w) { return w != 1; }, 1, 30);  // only 1 elsewhere
  std::vector<waiter_id> served;
  for (int round = 0; round < server_pool_fsm::max_head_skips + 2; ++round)
    served.push_back(line.next());
  std::vector<waiter_id> expected;
  for (waiter_id w = 2; w < 2 + server_pool_fsm::max_head_skips; ++w) expected.push_back(w);
  expected.push_back(1);  // skipped max_head_skips times: served now
  expected.push_back(2 + server_pool_fsm::max_head_skips);
  CHECK(served == expected);
}
