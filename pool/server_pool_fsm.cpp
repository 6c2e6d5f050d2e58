#include "pool/server_pool_fsm.hpp"

#include <algorithm>

namespace sluice::pool {

server_pool_fsm::server_pool_fsm(pool_limits limits) : limits_(limits) {}

void server_pool_fsm::update_limits(pool_limits limits) {
  limits_ = limits;
}

time_point server_pool_fsm::advance(time_point now) {
  last_now_ = std::max(last_now_, now);
  return last_now_;
}

std::uint32_t server_pool_fsm::min_size() const {
  return std::min(limits_.min_size, limits_.size);
}

// Overflow opens only once the oldest waiter has waited overflow_after: a short burst is served
// by the regular servers turning over, a sustained one gets extra servers.
std::uint32_t server_pool_fsm::capacity(time_point now) const {
  std::uint32_t cap = limits_.size;
  if (limits_.overflow > 0 && !waiters_.empty() &&
      now - waiters_.begin()->second.since >= limits_.overflow_after) {
    cap += limits_.overflow;
  }
  return cap;
}

// Each connecting slot will serve one waiter, so only waiters beyond them need a new slot.
std::uint32_t server_pool_fsm::unserved_waiters() const {
  const auto waiting = static_cast<std::uint32_t>(waiters_.size());
  return waiting > connecting_ ? waiting - connecting_ : 0;
}

bool server_pool_fsm::past_recycle(const slot& s, time_point now) const {
  return limits_.recycle && now - s.connected_at >= *limits_.recycle;
}

// A server that sat idle may have been killed (server restart, firewall timeout) without the
// daemon noticing; one that just connected or just finished a query is known to be alive.
bool server_pool_fsm::needs_ping(const slot& s, time_point now) const {
  return limits_.pre_ping && !s.fresh && now - s.since >= *limits_.pre_ping;
}

// LIFO, skipping servers past recycle while a younger one is idle: the old one would only be
// closed on release, costing a connect later that a young one does not.
server_id server_pool_fsm::pick_idle(time_point now,
                                     const std::function<bool(server_id)>& prefer) const {
  if (prefer) {
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it)
      if (!past_recycle(slots_.at(*it), now) && prefer(*it)) return *it;
  }
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    if (!past_recycle(slots_.at(*it), now)) return *it;
  }
  return idle_.back();
}

void server_pool_fsm::hand_out(server_id id, waiter_id w, std::uint64_t seq, time_point since,
                               time_point now) {
  auto& s = slots_.at(id);
  idle_.erase(std::find(idle_.begin(), idle_.end(), id));
  s.state = slot_state::active;
  s.since = now;
  s.fresh = false;
  s.holder = w;
  s.holder_seq = seq;
  s.holder_since = since;
  ++active_;
}

void server_pool_fsm::drop(server_id id, decisions& out) {
  auto it = slots_.find(id);
  switch (it->second.state) {
    case slot_state::connecting:
      --connecting_;
      break;
    case slot_state::idle:
      idle_.erase(std::find(idle_.begin(), idle_.end(), id));
      break;
    case slot_state::active:
      --active_;
      break;
  }
  slots_.erase(it);
  out.closes.push_back(id);
}

server_id server_pool_fsm::reserve_slot(time_point now) {
  const server_id id = next_server_++;
  slot s;
  s.state = slot_state::connecting;
  s.since = now;
  slots_.emplace(id, s);
  ++connecting_;
  return id;
}

void server_pool_fsm::enqueue(waiter_id w, std::uint64_t seq, time_point since) {
  waiters_.emplace(seq, waiter{w, since});
  waiter_seq_.emplace(w, seq);
}

server_pool_fsm::acquire_result server_pool_fsm::acquire(
    waiter_id w, time_point now, const std::function<bool(server_id)>& prefer) {
  now = advance(now);
  using kind = acquire_result::kind;
  if (waiter_seq_.contains(w)) return {kind::queued, 0, false, next_wakeup(now)};

  const std::uint64_t seq = next_seq_++;
  if (waiters_.empty() && !idle_.empty()) {
    const server_id id = pick_idle(now, prefer);
    const bool ping = needs_ping(slots_.at(id), now);
    hand_out(id, w, seq, now, now);
    return {kind::granted, id, ping, next_wakeup(now)};
  }
  enqueue(w, seq, now);
  // One slot per arrival at most: each acquire adds one waiter, so demand grows by one.
  if (!in_backoff(now) && unserved_waiters() > 0 && total() < capacity(now)) {
    const server_id id = reserve_slot(now);
    return {kind::open_new, id, false, next_wakeup(now)};
  }
  return {kind::queued, 0, false, next_wakeup(now)};
}

void server_pool_fsm::cancel_wait(waiter_id w) {
  auto it = waiter_seq_.find(w);
  if (it == waiter_seq_.end()) return;
  waiters_.erase(it->second);
  waiter_seq_.erase(it);
}

server_pool_fsm::decisions server_pool_fsm::on_open_succeeded(server_id id, time_point now) {
  now = advance(now);
  decisions out;
  auto it = slots_.find(id);
  if (it != slots_.end() && it->second.state == slot_state::connecting) {
    auto& s = it->second;
    s.state = slot_state::idle;
    s.since = now;
    s.connected_at = now;
    s.fresh = true;
    --connecting_;
    idle_.push_back(id);
    failure_streak_ = 0;
    last_failure_.reset();
    backoff_until_.reset();
  }
  settle(now, out);
  // Only a hand-over within this call skips the ping; parked, it ages like any idle server.
  if (auto again = slots_.find(id); again != slots_.end()) again->second.fresh = false;
  return out;
}

server_pool_fsm::decisions server_pool_fsm::on_open_failed(server_id id, time_point now) {
  now = advance(now);
  decisions out;
  auto it = slots_.find(id);
  if (it != slots_.end() && it->second.state == slot_state::connecting) {
    // Attempts started together fail together (server down): they count as one failure, or
    // a burst of N connects would jump straight to the maximum delay.
    const bool new_attempt = !last_failure_ || it->second.since > *last_failure_;
    if (new_attempt) ++failure_streak_;
    slots_.erase(it);
    --connecting_;

    duration delay = limits_.open_backoff_initial;
    for (std::uint32_t i = 1; i < failure_streak_ && delay < limits_.open_backoff_max; ++i) {
      if (delay == duration::zero()) break;
      delay *= 2;
    }
    delay = std::min(delay, limits_.open_backoff_max);
    last_failure_ = now;
    const time_point until = now + delay;
    backoff_until_ = backoff_until_ ? std::max(*backoff_until_, until) : until;
  }
  settle(now, out);
  return out;
}

server_pool_fsm::decisions server_pool_fsm::release(server_id id, time_point now, bool reusable) {
  now = advance(now);
  decisions out;
  auto it = slots_.find(id);
  if (it != slots_.end() && it->second.state == slot_state::active) {
    auto& s = it->second;
    if (!reusable || past_recycle(s, now)) {
      drop(id, out);
    } else {
      s.state = slot_state::idle;
      s.since = now;
      s.holder = 0;
      --active_;
      idle_.push_back(id);
    }
  }
  settle(now, out);
  return out;
}

server_pool_fsm::decisions server_pool_fsm::on_ping_failed(server_id id, time_point now) {
  now = advance(now);
  decisions out;
  auto it = slots_.find(id);
  if (it != slots_.end() && it->second.state == slot_state::active) {
    const slot s = it->second;
    drop(id, out);
    if (!waiter_seq_.contains(s.holder)) enqueue(s.holder, s.holder_seq, s.holder_since);
  }
  settle(now, out);
  return out;
}

server_pool_fsm::decisions server_pool_fsm::on_server_lost(server_id id, time_point now) {
  now = advance(now);
  decisions out;
  if (slots_.contains(id)) drop(id, out);
  settle(now, out);
  return out;
}

server_pool_fsm::decisions server_pool_fsm::tick(time_point now) {
  now = advance(now);
  decisions out;
  settle(now, out);
  return out;
}

void server_pool_fsm::settle(time_point now, decisions& out) {
  expire_waiters(now, out);
  close_recycled_idle(now, out);
  grant_idle_to_waiters(now, out);
  close_surplus_idle(now, out);
  open_slots(now, out);
  out.next_wakeup = next_wakeup(now);
}

// Arrival order is time order (advance() keeps time monotonic and a re-queued waiter keeps its
// number), so the expired ones are a prefix of the queue.
void server_pool_fsm::expire_waiters(time_point now, decisions& out) {
  while (!waiters_.empty()) {
    auto it = waiters_.begin();
    if (now - it->second.since < limits_.timeout) break;
    out.timed_out.push_back(it->second.id);
    waiter_seq_.erase(it->second.id);
    waiters_.erase(it);
  }
}

// Before granting, so a waiter never gets a server that is due to be closed; min_size refill
// and waiters' slots replace them in open_slots().
void server_pool_fsm::close_recycled_idle(time_point now, decisions& out) {
  if (!limits_.recycle) return;
  for (std::size_t i = 0; i < idle_.size();) {
    const server_id id = idle_[i];
    if (past_recycle(slots_.at(id), now)) {
      drop(id, out);  // erases idle_[i]
    } else {
      ++i;
    }
  }
}

void server_pool_fsm::grant_idle_to_waiters(time_point now, decisions& out) {
  while (!waiters_.empty() && !idle_.empty()) {
    const server_id id = pick_idle(now);
    auto it = waiters_.begin();
    if (same_thread_ && head_skips_ < max_head_skips) {
      auto candidate = waiters_.begin();
      for (int looked = 0; looked < affinity_lookahead && candidate != waiters_.end();
           ++looked, ++candidate) {
        if (same_thread_(id, candidate->second.id)) {
          it = candidate;
          break;
        }
      }
    }
    head_skips_ = it == waiters_.begin() ? 0 : head_skips_ + 1;
    const waiter w = it->second;
    const std::uint64_t seq = it->first;
    waiters_.erase(it);
    waiter_seq_.erase(w.id);
    const bool ping = needs_ping(slots_.at(id), now);
    hand_out(id, w.id, seq, w.since, now);
    out.grants.push_back({w.id, id, ping});
  }
}

// Runs after granting, so idle servers exist here only when nobody waits. Longest idle first.
void server_pool_fsm::close_surplus_idle(time_point now, decisions& out) {
  // Beyond `size`: overflow servers, or servers left over from a larger size before reload.
  while (!idle_.empty() && total() > limits_.size) drop(idle_.front(), out);
  if (!limits_.idle_timeout) return;
  while (!idle_.empty() && total() > min_size() &&
         now - slots_.at(idle_.front()).since >= *limits_.idle_timeout) {
    drop(idle_.front(), out);
  }
}

void server_pool_fsm::open_slots(time_point now, decisions& out) {
  if (in_backoff(now)) return;
  const std::uint32_t for_min = min_size() > total() ? min_size() - total() : 0;
  const std::uint32_t wanted = std::max(unserved_waiters(), for_min);
  const std::uint32_t cap = capacity(now);
  const std::uint32_t room = cap > total() ? cap - total() : 0;
  for (std::uint32_t n = std::min(wanted, room); n > 0; --n) {
    out.opens.push_back({reserve_slot(now)});
  }
}

std::optional<time_point> server_pool_fsm::next_wakeup(time_point now) const {
  std::optional<time_point> at;
  auto consider = [&](time_point t) {
    if (!at || t < *at) at = t;
  };
  if (!waiters_.empty()) {
    const time_point oldest = waiters_.begin()->second.since;
    consider(oldest + limits_.timeout);
    // Overflow is still ahead and would let unserved waiters have a slot.
    if (limits_.overflow > 0 && unserved_waiters() > 0 && now - oldest < limits_.overflow_after &&
        total() < limits_.size + limits_.overflow) {
      consider(oldest + limits_.overflow_after);
    }
  }
  if (in_backoff(now) && (unserved_waiters() > 0 || total() < min_size())) {
    consider(*backoff_until_);
  }
  for (const server_id id : idle_) {
    const slot& s = slots_.at(id);
    if (limits_.recycle) consider(s.connected_at + *limits_.recycle);
  }
  if (limits_.idle_timeout && !idle_.empty() && total() > min_size()) {
    consider(slots_.at(idle_.front()).since + *limits_.idle_timeout);
  }
  return at;
}

server_pool_fsm::stats server_pool_fsm::snapshot() const {
  stats st{};
  st.idle = static_cast<std::uint32_t>(idle_.size());
  st.active = active_;
  st.connecting = connecting_;
  st.waiting = static_cast<std::uint32_t>(waiters_.size());
  st.total = total();
  st.overflow_in_use = st.total > limits_.size ? st.total - limits_.size : 0;
  return st;
}

}  // namespace sluice::pool
