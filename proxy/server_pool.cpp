#include "proxy/server_pool.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <tuple>

namespace sluice::proxy {
namespace {

pool::pool_limits limits_from(const config::pool_settings& settings) {
  pool::pool_limits limits;
  limits.size = settings.size;
  limits.min_size = settings.min_size;
  limits.overflow = settings.overflow;
  limits.overflow_after = settings.overflow_after;
  limits.timeout = settings.timeout;
  limits.recycle = settings.recycle;
  limits.idle_timeout = settings.idle_timeout;
  limits.pre_ping = settings.pre_ping;
  return limits;
}

constexpr auto ping_timeout = std::chrono::seconds(5);

}  // namespace

// A client waiting for a server. Shared with the granting thread's posted wake-up, so it
// outlives whichever of the two finishes last.
struct server_pool::waiter_slot {
  explicit waiter_slot(asio::any_io_executor executor) : wake(std::move(executor)) {}
  asio::steady_timer wake;
  std::unique_ptr<server_connection> granted;  // set under mutex_ by a grant
  bool needs_ping = false;
  bool timed_out = false;
  std::optional<server_error> rejected;
};

// Side effects decided under mutex_, carried out after it is released.
struct server_pool::effects {
  // Mostly one waiter or none per call: inline room keeps the heap out of it.
  boost::container::small_vector<std::shared_ptr<waiter_slot>, 2> wake;
  boost::container::small_vector<pool::server_id, 2> opens;
  std::vector<std::unique_ptr<server_connection>> closes;
  std::string_view close_reason = "idle timeout, recycle or surplus";
  // For the statistics; unset: classify_close() tells from each server's age and idle time.
  std::optional<pool::server_close_reason> close_why;
  std::optional<pool::time_point> next_wakeup;
};

server_pool::server_pool(worker_set& workers, std::string name, config::database_settings database,
                         upstream_login login, std::uint32_t max_message_size,
                         std::shared_ptr<spdlog::logger> log, std::string client_user)
    : workers_(workers),
      name_(std::move(name)),
      database_(std::move(database)),
      login_(std::move(login)),
      max_message_size_(max_message_size),
      log_(std::move(log)),
      client_user_(std::move(client_user)),
      fsm_(limits_from(database_.pool)),
      janitor_timer_(workers.next()) {
  // Called by the fsm under mutex_, which also guards idle_ and waiters_.
  fsm_.set_affinity([this](pool::server_id server, pool::waiter_id waiter) {
    auto parked = idle_.find(server);
    auto queued = waiters_.find(waiter);
    return parked != idle_.end() && queued != waiters_.end() &&
           parked->second->socket.get_executor() == queued->second->wake.get_executor();
  });
}

void server_pool::start() {
  asio::co_spawn(
      janitor_timer_.get_executor(), [self = shared_from_this()] { return self->janitor(); },
      asio::detached);
}

void server_pool::stop() {
  effects fx;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    fx.close_reason = "sluice stopping";
    fx.close_why = pool::server_close_reason::stopping;
    for (auto& [id, server] : idle_) fx.closes.push_back(std::move(server));
    idle_.clear();
    for (auto& [id, slot] : waiters_) fx.wake.push_back(slot);
  }
  asio::post(janitor_timer_.get_executor(),
             [self = shared_from_this()] { self->janitor_timer_.cancel(); });
  carry_out(fx);
}

pool::server_pool_fsm::stats server_pool::snapshot() const {
  std::lock_guard lock(mutex_);
  return fsm_.snapshot();
}

bool server_pool::has_waiters() const {
  std::lock_guard lock(mutex_);
  return fsm_.snapshot().waiting > 0;
}

void server_pool::apply_locked(const pool::server_pool_fsm::decisions& decided, effects& fx) {
  for (const auto& grant : decided.grants) {
    auto server = idle_.extract(grant.server);
    auto waiter = waiters_.extract(grant.waiter);
    if (server.empty()) continue;  // cannot happen: the fsm only grants parked servers
    if (waiter.empty()) {          // cannot happen: cancelled waiters are not granted
      idle_.insert(std::move(server));
      continue;
    }
    waiter.mapped()->granted = std::move(server.mapped());
    waiter.mapped()->needs_ping = grant.needs_ping;
    fx.wake.push_back(std::move(waiter.mapped()));
  }
  for (const auto& open : decided.opens) fx.opens.push_back(open.server);
  for (auto id : decided.closes) {
    if (auto server = idle_.extract(id); !server.empty())
      fx.closes.push_back(std::move(server.mapped()));
  }
  for (auto id : decided.timed_out) {
    if (auto waiter = waiters_.extract(id); !waiter.empty()) {
      waiter.mapped()->timed_out = true;
      fx.wake.push_back(std::move(waiter.mapped()));
    }
  }
  if (decided.next_wakeup) fx.next_wakeup = decided.next_wakeup;
}

void server_pool::carry_out(effects& fx) {
  for (auto& slot : fx.wake) {
    asio::post(slot->wake.get_executor(), [slot] { slot->wake.cancel(); });
  }
  for (auto id : fx.opens) {
    asio::co_spawn(
        workers_.next(), [self = shared_from_this(), id] { return self->open_one(id); },
        asio::detached);
  }
  for (auto& server : fx.closes) {
    const auto why = fx.close_why ? *fx.close_why : classify_close(*server);
    close_server(std::move(server), fx.close_reason, why);
  }
  // Wake the janitor early only when the fsm needs it sooner than it is already due: the
  // janitor usually lives on another thread, and waking it costs that thread a system call.
  if (fx.next_wakeup &&
      fx.next_wakeup->time_since_epoch().count() < janitor_due_.load(std::memory_order_relaxed)) {
    asio::post(janitor_timer_.get_executor(), [self = shared_from_this(), at = *fx.next_wakeup] {
      if (at < self->janitor_timer_.expiry()) self->janitor_timer_.cancel();
    });
  }
}

pool::server_close_reason server_pool::classify_close(const server_connection& server) const {
  const auto now = std::chrono::steady_clock::now();
  const auto& limits = database_.pool;
  if (limits.recycle && now - server.opened_at >= *limits.recycle)
    return pool::server_close_reason::recycle;
  const auto& status = *server.status;
  const auto since = std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(status.since.load(std::memory_order_relaxed)));
  if (limits.idle_timeout &&
      status.now.load(std::memory_order_relaxed) == server_status::state::idle &&
      now - since >= *limits.idle_timeout)
    return pool::server_close_reason::idle;
  return pool::server_close_reason::surplus;
}

void server_pool::close_server(std::unique_ptr<server_connection> server, std::string_view reason,
                               pool::server_close_reason why) {
  if (!server) return;
  log_->info("server closed pool={} pid={} reason=\"{}\"", name_, server->backend_pid, reason);
  counters_.count_close(why);
  {
    std::lock_guard lock(mutex_);
    statuses_.erase(server->id);
  }
  // A Terminate lets PostgreSQL log a clean disconnect; best effort, never blocking.
  static constexpr char terminate[] = {'X', 0, 0, 0, 4};
  error_code ignored;
  server->socket.non_blocking(true, ignored);
  asio::write(server->socket, asio::buffer(terminate), ignored);
  server->socket.close(ignored);
}

awaitable<void> server_pool::open_one(pool::server_id id) {
  auto server = std::make_unique<server_connection>(co_await asio::this_coro::executor,
                                                    database_.pool.prepared_statements);
  server->id = id;
  const auto outcome =
      co_await open_server(*server, database_.server, login_, database_.pool.connect_timeout,
                           database_.pool.login_timeout, max_message_size_);
  effects fx;
  {
    std::lock_guard lock(mutex_);
    if (outcome && !stopping_) {
      forget_profiles_if_defaults_changed(server->params_at_login);
      // Published under mutex_, which every reader of statuses_ holds.
      auto& status = *server->status;
      status.id = id;
      status.backend_pid = server->backend_pid;
      status.connected_at_us = wall_clock_us();
      if (auto name = server->params_at_login.get("application_name"))
        status.application_name = *name;
      error_code ec;
      if (auto local = server->socket.local_endpoint(ec); !ec)
        std::tie(status.local_address, status.local_port) = address_and_port(local);
      status.enter(server_status::state::idle);
      statuses_.emplace(id, server->status);
      idle_.emplace(id, std::move(server));
      apply_locked(fsm_.on_open_succeeded(id, pool::clock::now()), fx);
    } else {
      apply_locked(fsm_.on_open_failed(id, pool::clock::now()), fx);
      // A server that refuses the login (bad password, missing database) refuses everyone:
      // waiting clients get its error now instead of a timeout later.
      if (outcome.rejected) {
        for (auto& [waiter_id, slot] : waiters_) {
          fsm_.cancel_wait(waiter_id);
          slot->rejected = outcome.rejected;
          fx.wake.push_back(slot);
        }
        waiters_.clear();
      }
    }
  }
  if (outcome) {
    counters_.count_open();
    upstream_.store(upstream_state::reachable, std::memory_order_relaxed);
  } else if (outcome.rejected || outcome.error || !outcome.problem.empty()) {
    upstream_.store(upstream_state::unreachable, std::memory_order_relaxed);
  }
  if (server && outcome) {
    close_server(std::move(server), "pool stopping", pool::server_close_reason::stopping);
  } else if (outcome) {
    log_->info("server opened pool={} server={}", name_, id);
  } else if (outcome.rejected) {
    log_->error("server login rejected pool={} sqlstate={} message=\"{}\"", name_,
                outcome.rejected->sqlstate, outcome.rejected->message);
  } else {
    log_->warn("server connect failed pool={} host={}:{} reason=\"{}\"", name_,
               database_.server.host, database_.server.port,
               outcome.problem.empty() ? outcome.error.message() : outcome.problem);
  }
  carry_out(fx);
}

awaitable<void> server_pool::janitor() {
  constexpr auto beat = std::chrono::milliseconds(500);
  for (;;) {
    auto next = pool::clock::now() + beat;
    {
      // Scoped: nothing it holds (waiters, servers) may live on across the wait below.
      effects fx;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) co_return;
        apply_locked(fsm_.tick(pool::clock::now()), fx);
      }
      carry_out(fx);
      if (fx.next_wakeup && *fx.next_wakeup < next) next = *fx.next_wakeup;
    }
    // PgBouncer's stats_period (60 s by default): SHOW STATS' averages cover the last one or two.
    constexpr auto stats_period = std::chrono::seconds(60);
    if (const auto now = pool::clock::now(); now - stats_window().newer_at >= stats_period)
      roll_stats_window(now);
    janitor_timer_.expires_at(next);
    janitor_due_.store(next.time_since_epoch().count(), std::memory_order_relaxed);
    co_await janitor_timer_.async_wait(use_nothrow);
  }
}

std::optional<server_pool::login_profile> server_pool::find_login_profile(
    const startup_settings& settings) const {
  std::lock_guard lock(mutex_);
  auto it = login_profiles_.find(settings);
  if (it == login_profiles_.end()) return std::nullopt;
  return it->second;
}

void server_pool::remember_login_profile(const startup_settings& settings, login_profile profile) {
  constexpr std::size_t max_profiles = 256;  // distinct startup packets seen; a bound, not a cache
  std::lock_guard lock(mutex_);
  if (login_profiles_.size() >= max_profiles) login_profiles_.clear();
  login_profiles_.insert_or_assign(settings, std::move(profile));
}

void server_pool::forget_profiles_if_defaults_changed(const pool::session_params& reported) {
  bool same = reported.size() == profile_basis_.size();
  for (const auto& [name, entry] : reported.entries()) {
    if (!same) break;
    auto known = profile_basis_.get(name);
    same = known && *known == entry.value;
  }
  if (same) return;
  login_profiles_.clear();
  profile_basis_ = reported;
}

void server_pool::adopt(server_connection& server, const asio::any_io_executor& executor) {
  if (server.socket.get_executor() == executor || !server.socket.is_open()) return;
  // Re-register the descriptor with the session's own context: from now on its reads and
  // writes complete on the session's thread. Nothing is pending on an idle server.
  error_code ec;
  const auto fd = server.socket.release(ec);
  if (ec) return;  // a broken socket: verify() finds it dead
  stream_socket moved(executor);
  moved.assign(server.endpoint.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  server.socket = std::move(moved);
}

awaitable<bool> server_pool::verify(server_connection& server, bool needs_ping) {
  if (!idle_server_fit(server, max_message_size_)) {
    log_->debug("server looks dead pool={} pid={} buffered={}", name_, server.backend_pid,
                server.buffer.size());
    co_return false;
  }
  if (!needs_ping) co_return true;
  auto pinged = co_await execute_internal(server, "", ping_timeout, max_message_size_);
  if (!pinged || server.tx_status != 'I')
    log_->debug("server ping failed pool={} pid={} error={} status={}", name_, server.backend_pid,
                pinged.error.message(), server.tx_status);
  co_return pinged&& server.tx_status == 'I';
}

std::shared_ptr<server_pool::waiter_slot> server_pool::take_spare_slot(
    const asio::any_io_executor& executor) {
  for (auto it = spare_slots_.rbegin(); it != spare_slots_.rend(); ++it) {
    if ((*it)->wake.get_executor() != executor) continue;
    auto slot = std::move(*it);
    spare_slots_.erase(std::next(it).base());
    return slot;
  }
  return std::make_shared<waiter_slot>(executor);
}

void server_pool::keep_spare_slot(std::shared_ptr<waiter_slot> slot) {
  // Only a slot no posted wake-up still holds: a late cancel would wake its next user.
  constexpr std::size_t max_spares = 256;  // a bound on memory, not a limit on waiters
  if (!slot || slot.use_count() != 1) return;
  slot->granted.reset();
  slot->needs_ping = slot->timed_out = false;
  slot->rejected.reset();
  std::lock_guard lock(mutex_);
  if (spare_slots_.size() < max_spares && !stopping_) spare_slots_.push_back(std::move(slot));
}

awaitable<lease_result> server_pool::acquire() {
  auto executor = co_await asio::this_coro::executor;
  pool::waiter_id id;
  effects fx;
  std::unique_ptr<server_connection> at_once;  // granted without waiting: no slot needed
  bool at_once_needs_ping = false;
  std::shared_ptr<waiter_slot> slot;  // queued: where a grant, time-out or rejection lands
  // However the wait ends, the slot goes back for the next one.
  struct slot_return {
    server_pool& pool;
    std::shared_ptr<waiter_slot>& slot;
    ~slot_return() { pool.keep_spare_slot(std::move(slot)); }
  } returned{*this, slot};
  {
    std::lock_guard lock(mutex_);
    if (stopping_) co_return lease_result{nullptr, lease_result::failure::stopping, {}};
    id = next_waiter_++;
    const auto decided = fsm_.acquire(id, pool::clock::now(), [&](pool::server_id server) {
      auto it = idle_.find(server);
      return it != idle_.end() && it->second->socket.get_executor() == executor;
    });
    using kind = pool::server_pool_fsm::acquire_result::kind;
    if (decided.what == kind::granted) {
      at_once = std::move(idle_.extract(decided.server).mapped());
      at_once_needs_ping = decided.needs_ping;
    } else {
      slot = take_spare_slot(executor);
      waiters_.emplace(id, slot);
      if (decided.what == kind::open_new) fx.opens.push_back(decided.server);
    }
  }
  carry_out(fx);

  // A backstop in case a wake-up is lost: the fsm times waiters out, this only re-checks.
  const auto backstop = database_.pool.timeout + std::chrono::seconds(2);
  std::unique_ptr<server_connection> candidate = std::move(at_once);
  bool needs_ping = at_once_needs_ping;
  for (;;) {
    if (!candidate) {
      std::lock_guard lock(mutex_);
      if (slot->granted) {
        candidate = std::move(slot->granted);
        needs_ping = slot->needs_ping;
      } else if (slot->timed_out) {
        co_return lease_result{nullptr, lease_result::failure::timed_out, {}};
      } else if (slot->rejected) {
        co_return lease_result{nullptr, lease_result::failure::rejected, slot->rejected};
      } else if (stopping_) {
        waiters_.erase(id);
        co_return lease_result{nullptr, lease_result::failure::stopping, {}};
      }
    }
    if (candidate) {
      adopt(*candidate, executor);
      if (needs_ping) candidate->status->enter(server_status::state::tested);
      if (co_await verify(*candidate, needs_ping)) {
        candidate->status->enter(server_status::state::active);
        co_return lease_result{std::move(candidate), lease_result::failure::none, {}};
      }
      // Dead: close it and wait in line again at the same place; the fsm grants another
      // server or opens a replacement.
      effects replaced;
      {
        std::lock_guard lock(mutex_);
        if (!slot) slot = take_spare_slot(executor);
        waiters_.emplace(id, slot);
        apply_locked(fsm_.on_ping_failed(candidate->id, pool::clock::now()), replaced);
      }
      log_->info("server failed pre-ping pool={} pid={}: replaced", name_, candidate->backend_pid);
      close_server(std::move(candidate), "pre-ping failed",
                   needs_ping ? pool::server_close_reason::pre_ping_failed
                              : pool::server_close_reason::lost);
      carry_out(replaced);
      continue;
    }
    slot->wake.expires_after(backstop);
    auto [ec] = co_await slot->wake.async_wait(use_nothrow);
    if (!ec) {  // the backstop fired: give up the place in line
      std::lock_guard lock(mutex_);
      if (!slot->granted && !slot->rejected) {
        fsm_.cancel_wait(id);
        waiters_.erase(id);
        slot->timed_out = true;
      }
    }
  }
}

void server_pool::release(std::unique_ptr<server_connection> server, bool reusable,
                          pool::server_close_reason why) {
  effects fx;
  const auto id = server->id;
  server->status->client.store(0, std::memory_order_relaxed);
  if (reusable) server->status->enter(server_status::state::idle);
  {
    std::lock_guard lock(mutex_);
    if (reusable && !stopping_) idle_.emplace(id, std::move(server));
    apply_locked(fsm_.release(id, pool::clock::now(), reusable && !stopping_), fx);
  }
  if (server)
    close_server(std::move(server), reusable ? "pool stopping" : "not reusable",
                 reusable ? pool::server_close_reason::stopping : why);
  carry_out(fx);
}

void server_pool::roll_stats_window(pool::time_point now) {
  const auto totals = counters_.load().totals;
  std::lock_guard lock(stats_mutex_);
  window_.roll(totals, now);
}

pool::stats_window server_pool::stats_window() const {
  std::lock_guard lock(stats_mutex_);
  return window_;
}

std::vector<server_pool::server_view> server_pool::servers() const {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::vector<server_view> out;
  std::lock_guard lock(mutex_);
  out.reserve(statuses_.size());
  for (const auto& [id, status] : statuses_) {
    constexpr auto relaxed = std::memory_order_relaxed;
    out.push_back(
        {.id = status->id,
         .backend_pid = status->backend_pid,
         .local_address = status->local_address,
         .local_port = status->local_port,
         .connected_at_us = status->connected_at_us,
         .application_name = status->application_name,
         .state = status->now.load(relaxed),
         .in_state = std::chrono::steady_clock::duration(
             std::max<std::chrono::steady_clock::rep>(0, now - status->since.load(relaxed))),
         .client = status->client.load(relaxed),
         .request_since = status->request_since.load(relaxed),
         .prepared_statements = status->prepared_statements.load(relaxed)});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

}  // namespace sluice::proxy
