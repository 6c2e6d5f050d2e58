#include "pool/stats_window.hpp"

namespace sluice::pool {

pool_totals averages(const pool_totals& current, const pool_totals& base,
                     std::chrono::microseconds elapsed) {
  pool_totals out;
  if (elapsed.count() <= 0) return out;
  const auto us = static_cast<std::uint64_t>(elapsed.count());
  // Counters only grow; a base from before a restart of the counters cannot exist, but a
  // difference is never allowed to wrap.
  const auto delta = [](std::uint64_t now, std::uint64_t then) {
    return now > then ? now - then : 0;
  };
  const auto per_second = [&](std::uint64_t now, std::uint64_t then) {
    return delta(now, then) * 1'000'000 / us;
  };
  const auto per = [&](std::uint64_t time_now, std::uint64_t time_then, std::uint64_t n_now,
                       std::uint64_t n_then) -> std::uint64_t {
    const auto n = delta(n_now, n_then);
    return n == 0 ? 0 : delta(time_now, time_then) / n;
  };
  out.server_assignments = per_second(current.server_assignments, base.server_assignments);
  out.transactions = per_second(current.transactions, base.transactions);
  out.queries = per_second(current.queries, base.queries);
  out.bytes_received = per_second(current.bytes_received, base.bytes_received);
  out.bytes_sent = per_second(current.bytes_sent, base.bytes_sent);
  out.transaction_us =
      per(current.transaction_us, base.transaction_us, current.transactions, base.transactions);
  out.query_us = per(current.query_us, base.query_us, current.queries, base.queries);
  out.wait_us =
      per(current.wait_us, base.wait_us, current.server_assignments, base.server_assignments);
  out.logins = per_second(current.logins, base.logins);
  out.client_parses = per_second(current.client_parses, base.client_parses);
  out.server_parses = per_second(current.server_parses, base.server_parses);
  out.binds = per_second(current.binds, base.binds);
  out.cache_hits = per_second(current.cache_hits, base.cache_hits);
  out.evictions = per_second(current.evictions, base.evictions);
  out.injected_parses = per_second(current.injected_parses, base.injected_parses);
  return out;
}

}  // namespace sluice::pool
