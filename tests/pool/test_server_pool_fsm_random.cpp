// Thousands of random acquire / release / connect outcome / ping outcome / cancel / loss / tick
// steps against a model of what the daemon knows, checking after every step that the fsm's
// decisions are ones a daemon can carry out and that its invariants hold.
#include <catch2/catch.hpp>

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "fake_clock.hpp"
#include "pool/server_pool_fsm.hpp"

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

namespace {

struct named_limits {
  std::string name;
  pool_limits limits;
};

std::vector<named_limits> configs() {
  std::vector<named_limits> out;
  {
    pool_limits l;  // everything on
    l.size = 3;
    l.min_size = 1;
    l.overflow = 2;
    l.overflow_after = 1s;
    l.timeout = 5s;
    l.recycle = 20s;
    l.idle_timeout = 8s;
    l.pre_ping = 2s;
    out.push_back({"all timers", l});
  }
  {
    pool_limits l;  // one server, ping always, nothing ages out
    l.size = 1;
    l.min_size = 0;
    l.timeout = 3s;
    l.recycle = std::nullopt;
    l.idle_timeout = std::nullopt;
    l.pre_ping = 0ms;
    out.push_back({"single server", l});
  }
  {
    pool_limits l;  // all kept warm, short-lived
    l.size = 5;
    l.min_size = 5;
    l.timeout = 10s;
    l.recycle = 5s;
    l.idle_timeout = 1s;
    l.pre_ping = std::nullopt;
    out.push_back({"warm and short-lived", l});
  }
  {
    pool_limits l;  // overflow at once
    l.size = 2;
    l.min_size = 2;
    l.overflow = 3;
    l.overflow_after = 0ms;
    l.timeout = 2s;
    l.pre_ping = 500ms;
    l.open_backoff_max = 4s;
    out.push_back({"instant overflow", l});
  }
  return out;
}

enum class waiter_state {
  queued,     // waiting for a grant
  holding,    // holds a server (maybe still pinging it)
  served,     // held a server and released it
  timed_out,  // the fsm gave up on it
  cancelled,  // the client left while queued
};

// What a daemon knows about the pool, built only from what the fsm told it.
class model {
 public:
  model(server_pool_fsm& pool, const pool_limits& limits, std::mt19937_64& rng)
      : pool_(pool), limits_(limits), rng_(rng) {}

  void acquire(time_point now) {
    const waiter_id w = next_waiter_++;
    asked_[w] = now;
    arrival_[w] = next_arrival_++;
    const bool was_waiting = !queue_.empty();
    auto r = pool_.acquire(w, now);
    switch (r.what) {
      case kind::granted:
        REQUIRE_FALSE(was_waiting);  // FIFO: nobody is overtaken
        REQUIRE(idle_.erase(r.server) == 1);
        take(w, r.server, r.needs_ping);
        break;
      case kind::open_new:
        REQUIRE(seen_.insert(r.server).second);
        connecting_.insert(r.server);
        enqueue(w);
        break;
      case kind::queued:
        enqueue(w);
        break;
    }
    if (!queue_.empty()) {
      REQUIRE(r.next_wakeup);
      REQUIRE(*r.next_wakeup <= asked_.at(queue_.begin()->second) + limits_.timeout);
    }
    check(now);
  }

  void release(time_point now) {
    if (in_use_.empty()) return;
    const server_id s = pick(in_use_);
    const bool reusable = chance(0.9);
    finish(held_.at(s));
    held_.erase(s);
    in_use_.erase(s);
    if (reusable) idle_.insert(s);  // as the daemon parks it before telling the fsm
    apply(pool_.release(s, now, reusable), now, reusable ? 0 : s);
  }

  void resolve_open(time_point now) {
    if (connecting_.empty()) return;
    const server_id s = pick(connecting_);
    connecting_.erase(s);
    if (chance(0.85)) {
      idle_.insert(s);
      apply(pool_.on_open_succeeded(s, now), now, 0);
    } else {
      apply(pool_.on_open_failed(s, now), now, 0);
    }
  }

  void resolve_ping(time_point now) {
    if (pinging_.empty()) return;
    const server_id s = pick(pinging_);
    pinging_.erase(s);
    if (chance(0.75)) {
      in_use_.insert(s);
      return;
    }
    const waiter_id w = held_.at(s);
    held_.erase(s);
    state_[w] = waiter_state::queued;  // back in line at its old place
    queue_.emplace(arrival_.at(w), w);
    apply(pool_.on_ping_failed(s, now), now, s);
  }

  void cancel(time_point now) {
    if (queue_.empty()) return;
    auto it = std::next(queue_.begin(), static_cast<long>(rng_() % queue_.size()));
    const waiter_id w = it->second;
    queue_.erase(it);
    state_[w] = waiter_state::cancelled;
    pool_.cancel_wait(w);
    check(now);
  }

  void lose_idle(time_point now) {
    if (idle_.empty()) return;
    const server_id s = pick(idle_);
    idle_.erase(s);
    apply(pool_.on_server_lost(s, now), now, s);
  }

  void tick(time_point now) {
    apply(pool_.tick(now), now, 0);
    for (const auto& [arrival, w] : queue_) REQUIRE(now - asked_.at(w) < limits_.timeout);
  }

  // Stop new arrivals and let every outstanding thing finish.
  void drain(fake_clock& clock) {
    for (int round = 0; round < 10'000 && !queue_.empty(); ++round) {
      while (!pinging_.empty()) resolve_ping(clock.now);
      while (!connecting_.empty()) resolve_open(clock.now);
      while (!in_use_.empty()) release(clock.now);
      tick(clock.advance(100ms));
    }
    REQUIRE(queue_.empty());
    for (const auto& [w, st] : state_) {
      CAPTURE(w);
      CHECK(st != waiter_state::queued);
    }
  }

  std::size_t waiters() const { return state_.size(); }
  std::size_t count(waiter_state st) const {
    std::size_t n = 0;
    for (const auto& [w, s] : state_) n += s == st;
    return n;
  }

 private:
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  template <class Set>
  server_id pick(const Set& set) {
    return *std::next(set.begin(), static_cast<long>(rng_() % set.size()));
  }

  void enqueue(waiter_id w) {
    queue_.emplace(arrival_.at(w), w);
    state_[w] = waiter_state::queued;
  }

  void take(waiter_id w, server_id s, bool needs_ping) {
    REQUIRE(held_.emplace(s, w).second);  // never granted twice
    state_[w] = waiter_state::holding;
    if (needs_ping) {
      pinging_.insert(s);
    } else {
      in_use_.insert(s);
    }
  }

  void finish(waiter_id w) { state_[w] = waiter_state::served; }

  // `dropped`: the server this call reported dead or unusable, which may appear in closes.
  void apply(const decisions& d, time_point now, server_id dropped) {
    for (const waiter_id w : d.timed_out) {
      REQUIRE(state_.at(w) == waiter_state::queued);
      REQUIRE(now - asked_.at(w) >= limits_.timeout);
      queue_.erase(arrival_.at(w));
      state_[w] = waiter_state::timed_out;
    }
    for (const server_id s : d.closes) {
      REQUIRE(closed_.insert(s).second);
      if (idle_.erase(s) == 0) REQUIRE(s == dropped);
    }
    for (const auto& g : d.grants) {
      REQUIRE_FALSE(queue_.empty());
      REQUIRE(queue_.begin()->second == g.waiter);  // FIFO
      queue_.erase(queue_.begin());
      REQUIRE(idle_.erase(g.server) == 1);
      take(g.waiter, g.server, g.needs_ping);
    }
    for (const auto& o : d.opens) {
      REQUIRE(seen_.insert(o.server).second);
      connecting_.insert(o.server);
    }
    if (!queue_.empty()) {
      REQUIRE(d.next_wakeup);
      REQUIRE(*d.next_wakeup <= asked_.at(queue_.begin()->second) + limits_.timeout);
    }
    if (d.next_wakeup) REQUIRE(*d.next_wakeup > now);
    check(now);
  }

  void check(time_point) {
    const auto st = pool_.snapshot();
    REQUIRE(st.total <= limits_.size + limits_.overflow);
    REQUIRE(st.idle == idle_.size());
    REQUIRE(st.active == held_.size());
    REQUIRE(st.connecting == connecting_.size());
    REQUIRE(st.waiting == queue_.size());
    REQUIRE(st.total == st.idle + st.active + st.connecting);
    REQUIRE(st.overflow_in_use == (st.total > limits_.size ? st.total - limits_.size : 0));
    if (st.idle > 0) REQUIRE(st.waiting == 0);  // never idle while someone waits
  }

  server_pool_fsm& pool_;
  pool_limits limits_;
  std::mt19937_64& rng_;
  waiter_id next_waiter_ = 1;
  std::uint64_t next_arrival_ = 1;
  std::map<std::uint64_t, waiter_id> queue_;  // by arrival: the order grants must follow
  std::unordered_map<waiter_id, std::uint64_t> arrival_;
  std::unordered_map<waiter_id, time_point> asked_;
  std::map<waiter_id, waiter_state> state_;
  std::set<server_id> connecting_, idle_, pinging_, in_use_;
  std::map<server_id, waiter_id> held_;  // pinging or in use
  std::set<server_id> seen_, closed_;
};

}  // namespace

TEST_CASE("random operations keep the pool's invariants", "[pool][fsm][random]") {
  const auto all = configs();
  const std::size_t which = GENERATE(range<std::size_t>(0, 4));
  const std::uint64_t seed = GENERATE(1u, 2u, 3u, 20240601u);
  const auto& config = all.at(which);
  CAPTURE(config.name, seed);

  std::mt19937_64 rng(seed);
  fake_clock clock;
  server_pool_fsm pool(config.limits);
  model m(pool, config.limits, rng);
  m.tick(clock.now);

  std::discrete_distribution<int> op({30, 25, 20, 10, 3, 2, 10});
  for (int step = 0; step < 5'000; ++step) {
    // Mostly small steps, now and then a long quiet spell.
    const auto gap = rng() % 100 == 0 ? duration(rng() % 20'000) : duration(rng() % 300);
    clock.advance(gap);
    switch (op(rng)) {
      case 0:
        m.acquire(clock.now);
        break;
      case 1:
        m.release(clock.now);
        break;
      case 2:
        m.resolve_open(clock.now);
        break;
      case 3:
        m.resolve_ping(clock.now);
        break;
      case 4:
        m.cancel(clock.now);
        break;
      case 5:
        m.lose_idle(clock.now);
        break;
      default:
        m.tick(clock.now);
        break;
    }
  }
  m.drain(clock);

  const auto served = m.count(waiter_state::served);
  const auto holding = m.count(waiter_state::holding);
  const auto timed_out = m.count(waiter_state::timed_out);
  const auto cancelled = m.count(waiter_state::cancelled);
  CAPTURE(m.waiters(), served, holding, timed_out, cancelled);
  // Every waiter ended one way or another, and the run exercised both main outcomes.
  CHECK(served + holding + timed_out + cancelled == m.waiters());
  CHECK(served > 100);
  CHECK(timed_out > 0);
}
