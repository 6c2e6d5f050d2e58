#pragma once
// The averages of SHOW STATS and SHOW STATS_AVERAGES, as PgBouncer computes them: over the last
// stats_period or two. Every stats_period the daemon rolls each pool's window: the reading before
// last becomes the base, so an average always covers between one and two periods of the most
// recent traffic (PgBouncer's older_stats). Counts become rates per second; the times become the
// mean time per query, per transaction and per assignment over the same span.
//
// Threads: none here; the owner guards a window with its own lock (see server_pool).
#include "pool/pool_counters.hpp"
#include "pool/time.hpp"

namespace sluice::pool {

struct stats_window {
  explicit stats_window(time_point start) : older_at(start), newer_at(start) {}

  pool_totals older;  // the base the averages are measured from
  time_point older_at;
  pool_totals newer;  // the last reading, the next base
  time_point newer_at;

  void roll(const pool_totals& current, time_point now) {
    older = newer;
    older_at = newer_at;
    newer = current;
    newer_at = now;
  }
};

// The averages from `base` to `current` over `elapsed`; all zero when no time has passed.
pool_totals averages(const pool_totals& current, const pool_totals& base,
                     std::chrono::microseconds elapsed);

}  // namespace sluice::pool
