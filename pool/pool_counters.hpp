#pragma once
// What a pool has done since the daemon started: transactions, queries, bytes, times, waits,
// logins, prepared statements and server connections, as SHOW STATS and the metrics report them.
//
// Flow: a lease counts into its own plain lease_counters (see lease_fsm) and the session adds them
// here once, when the lease ends (in session mode: once per transaction); a wait is added once per
// grant, a login once per login, a server once when it opens or closes. Readers (the console, a
// scrape) load() a plain copy.
//
// Threads: any worker adds, any thread reads. Every field is an atomic updated with relaxed
// fetch_add: the counts need no ordering with anything else, only to add up. Nothing here is
// touched per message, and no lock is taken.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::pool {

// The histograms' bucket bounds (Prometheus' `le`), in microseconds: 100 µs to 10 s.
inline constexpr std::array<std::uint64_t, 16> duration_bounds_us{
    100,    250,     500,     1'000,   2'500,     5'000,     10'000,    25'000,
    50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};

// A histogram of durations, plain: what one lease gathers, or a loaded copy of a pool's.
struct duration_histogram {
  // Observations per bucket, not cumulative; the last bucket is everything above the last bound.
  std::array<std::uint64_t, duration_bounds_us.size() + 1> buckets{};
  std::uint64_t count = 0;
  std::uint64_t sum_us = 0;

  void observe(std::uint64_t us);
  duration_histogram& operator+=(const duration_histogram& other);
  bool operator==(const duration_histogram&) const = default;
};

// Counts and times, plain. Times are microseconds, as PgBouncer reports them.
struct pool_totals {
  std::uint64_t server_assignments = 0;  // times a client was given a server
  std::uint64_t transactions = 0;        // ended by a ReadyForQuery with status 'I'
  std::uint64_t queries = 0;             // requests answered by a ReadyForQuery
  std::uint64_t bytes_received = 0;      // from clients, while they held a server
  std::uint64_t bytes_sent = 0;          // from servers, to clients
  std::uint64_t transaction_us = 0;      // first request of a transaction to its end
  std::uint64_t query_us = 0;            // first message of a request to its ReadyForQuery
  std::uint64_t wait_us = 0;             // clients waiting for a server
  std::uint64_t logins = 0;              // clients that logged in to the pool
  // Prepared statements (transaction mode with the statement cache on).
  std::uint64_t client_parses = 0;    // named Parse (and PREPARE) from clients
  std::uint64_t server_parses = 0;    // Parse (and PREPARE) sent to servers
  std::uint64_t binds = 0;            // Bind of a client's named statement
  std::uint64_t cache_hits = 0;       // client Parses the server already had: not prepared again
  std::uint64_t evictions = 0;        // statements closed on a server to make room
  std::uint64_t injected_parses = 0;  // Parses sent first because the server lacked a statement

  pool_totals& operator+=(const pool_totals& other);
  bool operator==(const pool_totals&) const = default;
};

// Why a server connection was closed.
enum class server_close_reason : std::uint8_t {
  recycle,          // older than pool.recycle
  idle,             // idle longer than pool.idle_timeout
  surplus,          // more servers than pool.size once nobody waited (overflow, a smaller size)
  pre_ping_failed,  // dead when pinged before a hand-out
  lost,             // hung up or sent a FATAL while idle
  error,            // broke during a lease, or a step sluice needed from it failed
  client_gone,      // its client left mid-request: only closing it was safe
  stopping,         // sluice is shutting down
};
inline constexpr std::size_t server_close_reasons = 8;
std::string_view name_of(server_close_reason reason);  // "recycle", "pre_ping_failed", ...

// SQLSTATE classes ("28" of "28P01"), as an index into a fixed table: 36 × 36 of them.
inline constexpr std::size_t sqlstate_classes = 36 * 36;
// The class's index, or sqlstate_classes when `sqlstate` does not start with two of [0-9A-Z].
std::size_t sqlstate_class_index(std::string_view sqlstate);
std::string sqlstate_class_name(std::size_t index);  // the inverse: 0 -> "00"

// What one lease gathers, plain (single-threaded, on the session's thread).
struct lease_counters {
  pool_totals totals;  // queries, transactions, bytes and their times
  duration_histogram query_times, transaction_times;
  std::vector<std::uint16_t> error_classes;  // one per ErrorResponse relayed; empty: no allocation

  bool empty() const {
    return totals.queries == 0 && totals.bytes_received == 0 && totals.bytes_sent == 0 &&
           error_classes.empty();
  }
};

class pool_counters {
 public:
  void add(const pool_totals& totals);
  void add(const lease_counters& lease);  // totals and histograms; error classes go elsewhere
  void add_wait(std::uint64_t us);        // a grant: one assignment, its wait
  void add_login(std::uint64_t us);       // a login, and how long it took
  void count_open() { servers_opened_.fetch_add(1, std::memory_order_relaxed); }
  void count_close(server_close_reason reason);

  struct view {
    pool_totals totals;
    duration_histogram wait_times, query_times, transaction_times, login_times;
    std::uint64_t servers_opened = 0;
    std::array<std::uint64_t, server_close_reasons> servers_closed{};
  };
  view load() const;

 private:
  struct shared_histogram {
    std::array<std::atomic<std::uint64_t>, duration_bounds_us.size() + 1> buckets{};
    std::atomic<std::uint64_t> sum_us{0};  // the count is the buckets' sum
    void add(const duration_histogram& h);
    void observe(std::uint64_t us);
    duration_histogram load() const;
  };
  std::array<std::atomic<std::uint64_t>, sizeof(pool_totals) / sizeof(std::uint64_t)> totals_{};
  shared_histogram wait_times_, query_times_, transaction_times_, login_times_;
  std::atomic<std::uint64_t> servers_opened_{0};
  std::array<std::atomic<std::uint64_t>, server_close_reasons> servers_closed_{};
};

// Errors sent to clients, by SQLSTATE class, for the whole daemon (labels from clients that never
// logged in would be theirs to choose, so these have none but the class).
class error_counters {
 public:
  void count(std::string_view sqlstate);
  void count_classes(const std::vector<std::uint16_t>& classes);
  // Non-zero classes with their counts, by class.
  std::vector<std::pair<std::string, std::uint64_t>> load() const;

 private:
  std::array<std::atomic<std::uint64_t>, sqlstate_classes> by_class_{};
};

}  // namespace sluice::pool
