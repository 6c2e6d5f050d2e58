#pragma once
// The server slots and waiting clients of one pool, for one (database, user). Pure logic: no
// I/O, no clock, no locks. The daemon guards each instance with a mutex it never holds across
// I/O, passes `now` into every call, and carries out the decisions each call returns.
//
// Flow:
//   slot:   connecting --on_open_succeeded--> idle <--release(reusable)-- active
//              |                               |  \---grant (acquire / any call)--> active
//              +--on_open_failed--> gone       +--idle_timeout / recycle / surplus--> closed
//                                              +--on_server_lost--> closed
//           active --release(!reusable or past recycle) / on_ping_failed / lost--> closed
//   waiter: acquire --> granted at once (nobody waiting and a server idle)
//                   \-> queued (open_new also asks for a slot) --grant--> holds a server
//                                                              \--timeout--> timed_out
//                                                              \--cancel_wait--> gone
//           A granted waiter whose pre-ping fails is queued again at its old place.
//
// Every call that returns decisions ends in one settle step, in this order: time out waiters past
// `timeout`; close idle servers past `recycle`; hand idle servers to waiters, oldest waiter
// first; close idle servers beyond `size` and those past `idle_timeout` while more than
// `min_size` are open; open slots for waiters without one and up to `min_size`, within
// capacity and outside connect backoff. So after any call no server sits idle while a client
// waits, and the daemon's timer only has to call tick() at `next_wakeup`.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "pool/pool_limits.hpp"
#include "pool/time.hpp"

namespace sluice::pool {

using server_id = std::uint64_t;  // minted by the fsm for each slot; never 0, never reused
using waiter_id = std::uint64_t;  // minted by the caller; unique among its queued waiters

class server_pool_fsm {
 public:
  explicit server_pool_fsm(pool_limits limits);

  // Config reload. Takes effect at the next call that settles (call tick() to apply at once):
  // a smaller `size` closes idle surplus now and busy surplus on release.
  void update_limits(pool_limits limits);
  const pool_limits& limits() const { return limits_; }

  // A client wants a server. FIFO: if anyone is already waiting, the newcomer queues even if
  // an idle server exists (after any settle an idle server and a waiter never coexist).
  struct acquire_result {
    enum class kind {
      granted,   // take idle `server` now; ping it first if `needs_ping`
      open_new,  // queued, and the fsm reserved slot `server` (connecting): the daemon connects
                 // it and reports on_open_succeeded/failed; the connected server goes to the
                 // oldest waiter, which is this one unless older waiters exist
      queued,    // queued: the grant or time-out arrives in the decisions of a later call
    } what;
    server_id server = 0;     // granted / open_new: the server or the reserved slot
    bool needs_ping = false;  // granted: idle at least pre_ping -> send an empty query first
    // When tick() is next due (a waiter's timeout, an overflow or backoff moment, ...).
    std::optional<time_point> next_wakeup;
  };
  // `prefer`, when given, picks among idle servers first (the daemon prefers a server whose
  // socket already lives on the caller's thread); otherwise the most recently idle one.
  acquire_result acquire(waiter_id waiter, time_point now,
                         const std::function<bool(server_id)>& prefer = {});

  // The client vanished while queued. No-op when it is not queued (e.g. already granted: then
  // the daemon owns the server and must release() it).
  void cancel_wait(waiter_id waiter);

  // Whether a server and a waiter live on the same thread (the daemon's answer; pure tests
  // inject their own). When set, an idle server goes to the oldest waiter that shares its
  // thread among the first `affinity_lookahead` in line, so a busy pool hands servers on
  // without moving sockets or waking other threads. FIFO stays nearly exact: the waiter at
  // the head of the line is passed over at most `max_head_skips` times, then served.
  using affinity_function = std::function<bool(server_id, waiter_id)>;
  void set_affinity(affinity_function same_thread) { same_thread_ = std::move(same_thread); }
  static constexpr int affinity_lookahead = 8;
  static constexpr int max_head_skips = 8;

  struct grant {
    waiter_id waiter;
    server_id server;
    bool needs_ping;  // idle at least pre_ping: send an empty query first, on_ping_failed if dead
  };
  struct open_request {
    server_id server;  // "please connect a new server for this slot"
  };
  // What the daemon must carry out after a call. A call (one per lease and per release) decides
  // about one or two things: inline room for those keeps the heap out of it.
  template <class T>
  using few = boost::container::small_vector<T, 2>;
  struct decisions {
    few<grant> grants;        // give each server to its waiter
    few<open_request> opens;  // connect these slots
    // Servers the fsm has dropped: disconnect them (Terminate + close). Lists every server
    // dropped by the call, including one the call itself reported dead or unusable; a failed
    // connect is not listed, as it has no connection to close.
    few<server_id> closes;
    few<waiter_id> timed_out;               // send these waiters 53300 and forget them
    std::optional<time_point> next_wakeup;  // call tick() then at the latest; nullopt = no timer

    bool empty() const {
      return grants.empty() && opens.empty() && closes.empty() && timed_out.empty();
    }
  };

  // The slot is connected: it goes to the oldest waiter or is parked idle. Resets backoff.
  decisions on_open_succeeded(server_id server, time_point now);
  // The connect failed: frees the slot and starts (or extends) connect backoff, during which
  // neither waiters nor min_size get new slots. Waiters keep waiting until their timeout.
  decisions on_open_failed(server_id server, time_point now);
  // The client is done with the server. reusable=false (broken, mid-transaction) closes it;
  // so does being older than `recycle` (checked here, never while in use). With no waiter
  // and more than `size` servers open (overflow, or a shrunk size) it is closed too.
  decisions release(server_id server, time_point now, bool reusable);
  // Pre-ping found the granted server dead: close it and queue its waiter again at its old
  // place, so it gets another server or a new slot without seeing an error.
  decisions on_ping_failed(server_id server, time_point now);
  // The server died on its own (the daemon saw EOF on an idle server). Drops it in whatever
  // state; for a server in use, release(reusable=false) says the same.
  decisions on_server_lost(server_id server, time_point now);
  // Timers only: waiter timeouts, idle_timeout, recycle, min_size refill, overflow, backoff end.
  // Call it once after construction (min_size warm-up), after update_limits, and at every
  // next_wakeup.
  decisions tick(time_point now);

  struct stats {
    std::uint32_t idle, active, connecting, waiting, total;
    std::uint32_t overflow_in_use;  // servers (any state) open beyond `size`
  };
  stats snapshot() const;

 private:
  // One server slot. Which container it is listed in follows its state.
  enum class slot_state {
    connecting,  // reserved, the daemon is connecting it; counts toward capacity
    idle,        // connected and parked; listed in idle_
    active,      // held by a client (possibly being pre-pinged)
  };
  struct slot {
    slot_state state = slot_state::connecting;
    time_point since;         // entered its state: connect requested / parked / granted
    time_point connected_at;  // the age `recycle` measures
    bool fresh = false;       // just connected in this very call: its login proved it alive
    // active only: who holds it, kept so a failed pre-ping can queue them again in place.
    waiter_id holder = 0;
    std::uint64_t holder_seq = 0;
    time_point holder_since;
  };
  struct waiter {
    waiter_id id;
    time_point since;  // when it called acquire: its timeout and overflow_after count from here
  };

  time_point advance(time_point now);
  void settle(time_point now, decisions& out);
  void expire_waiters(time_point now, decisions& out);
  void close_recycled_idle(time_point now, decisions& out);
  void grant_idle_to_waiters(time_point now, decisions& out);
  void close_surplus_idle(time_point now, decisions& out);
  void open_slots(time_point now, decisions& out);
  std::optional<time_point> next_wakeup(time_point now) const;

  server_id pick_idle(time_point now, const std::function<bool(server_id)>& prefer = {}) const;
  bool needs_ping(const slot& s, time_point now) const;
  bool past_recycle(const slot& s, time_point now) const;
  void hand_out(server_id id, waiter_id w, std::uint64_t seq, time_point since, time_point now);
  void drop(server_id id, decisions& out);
  server_id reserve_slot(time_point now);
  void enqueue(waiter_id w, std::uint64_t seq, time_point since);

  std::uint32_t total() const { return static_cast<std::uint32_t>(slots_.size()); }
  std::uint32_t min_size() const;
  std::uint32_t capacity(time_point now) const;
  bool in_backoff(time_point now) const { return backoff_until_ && now < *backoff_until_; }
  std::uint32_t unserved_waiters() const;

  pool_limits limits_;
  std::map<server_id, slot> slots_;  // every slot in every state
  // Idle servers, longest idle first. Grants take the most recently parked one (LIFO) so a
  // few servers stay hot and the cold end ages out through idle_timeout.
  std::vector<server_id> idle_;
  // Queued waiters by arrival number: FIFO, and a waiter queued again keeps its number.
  std::map<std::uint64_t, waiter> waiters_;
  std::unordered_map<waiter_id, std::uint64_t> waiter_seq_;
  std::uint32_t connecting_ = 0;
  std::uint32_t active_ = 0;
  affinity_function same_thread_;
  int head_skips_ = 0;  // times the current head of the line was passed over
  server_id next_server_ = 1;
  std::uint64_t next_seq_ = 1;
  // Latest `now` seen. Threads read the clock before taking the daemon's mutex, so calls can
  // arrive slightly out of time order; the fsm never lets its time run backwards.
  time_point last_now_ = time_point::min();
  // Connect backoff.
  std::uint32_t failure_streak_ = 0;         // failed attempts in a row, concurrent ones as one
  std::optional<time_point> last_failure_;   // an attempt started before this adds no streak
  std::optional<time_point> backoff_until_;  // no new slot is opened before this
};

}  // namespace sluice::pool
