#include "proxy/metrics_text.hpp"

#include <fmt/format.h>

#include <string_view>

#include "pool/pool_counters.hpp"

namespace sluice::proxy {
namespace {

// Label values escape backslash, double quote and newline, as the format requires.
std::string label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string pool_labels(const admin_snapshot::pool_row& pool) {
  return fmt::format("database=\"{}\",user=\"{}\"", label(pool.database), label(pool.user));
}

double seconds(std::uint64_t us) {
  return static_cast<double>(us) / 1e6;
}

class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <class Value>
  void sample(std::string_view name, std::string_view labels, Value value) {
    if (labels.empty())
      out_ += fmt::format("{} {}\n", name, value);
    else
      out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
  }
  // Cumulative buckets from pool_counters' per-bucket counts, then _sum and _count.
  void histogram(std::string_view name, std::string_view labels,
                 const pool::duration_histogram& h) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < pool::duration_bounds_us.size(); ++i) {
      cumulative += h.buckets[i];
      out_ += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels,
                          seconds(pool::duration_bounds_us[i]), cumulative);
    }
    cumulative += h.buckets.back();
    out_ += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
    out_ += fmt::format("{}_sum{{{}}} {}\n", name, labels, seconds(h.sum_us));
    out_ += fmt::format("{}_count{{{}}} {}\n", name, labels, cumulative);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

struct pool_counter {
  std::string_view name, help;
  std::uint64_t pool::pool_totals::*field;
};
constexpr pool_counter pool_counters_shown[] = {
    {"sluice_transactions_total", "Transactions relayed.", &pool::pool_totals::transactions},
    {"sluice_queries_total", "Requests answered by a ReadyForQuery.", &pool::pool_totals::queries},
    {"sluice_received_bytes_total", "Bytes from clients while they held a server.",
     &pool::pool_totals::bytes_received},
    {"sluice_sent_bytes_total", "Bytes from servers to clients.", &pool::pool_totals::bytes_sent},
    {"sluice_server_assignments_total", "Times a client was given a server.",
     &pool::pool_totals::server_assignments},
    {"sluice_client_logins_total", "Clients that logged in to the pool.",
     &pool::pool_totals::logins},
    {"sluice_prepared_statement_client_parses_total", "Named Parse and PREPARE from clients.",
     &pool::pool_totals::client_parses},
    {"sluice_prepared_statement_server_parses_total", "Parse and PREPARE sent to servers.",
     &pool::pool_totals::server_parses},
    {"sluice_prepared_statement_binds_total", "Bind of a client's named statement.",
     &pool::pool_totals::binds},
    {"sluice_prepared_statement_cache_hits_total",
     "Client Parses the server already had, not prepared again.", &pool::pool_totals::cache_hits},
    {"sluice_prepared_statement_evictions_total",
     "Statements closed on a server to make room in its cache.", &pool::pool_totals::evictions},
    {"sluice_prepared_statement_injected_parses_total",
     "Parses sent first because the server lacked the client's statement.",
     &pool::pool_totals::injected_parses},
};

}  // namespace

std::string render_metrics(const admin_snapshot& snapshot) {
  exposition out;
  out.family("sluice_clients", "gauge", "Client connections open, logging in or logged in.");
  out.sample("sluice_clients", "", snapshot.clients_open);
  out.family("sluice_clients_logging_in", "gauge", "Client connections not logged in yet.");
  out.sample("sluice_clients_logging_in", "", snapshot.clients_logging_in);
  out.family("sluice_prepared_statements", "gauge",
             "Distinct prepared statements in the shared registry.");
  out.sample("sluice_prepared_statements", "", snapshot.prepared_statements);
  out.family("sluice_draining", "gauge", "1 while the daemon drains (then /readyz says 503).");
  out.sample("sluice_draining", "", snapshot.draining ? 1 : 0);

  // What SHOW POOLS shows.
  out.family("sluice_pool_clients", "gauge", "Logged-in clients per pool, by state.");
  for (const auto& p : snapshot.pools) {
    const auto labels = pool_labels(p);
    out.sample("sluice_pool_clients", labels + ",state=\"active\"", p.clients_active);
    out.sample("sluice_pool_clients", labels + ",state=\"waiting\"", p.clients_waiting);
  }
  out.family("sluice_pool_servers", "gauge",
             "Server connections per pool, by state (SHOW POOLS: sv_active, sv_idle, sv_used, "
             "sv_tested, sv_login).");
  for (const auto& p : snapshot.pools) {
    const auto labels = pool_labels(p);
    const auto plain_idle =
        p.servers.idle - std::min(p.servers.idle, p.servers_used + p.servers_tested);
    out.sample("sluice_pool_servers", labels + ",state=\"active\"", p.servers.active);
    out.sample("sluice_pool_servers", labels + ",state=\"idle\"", plain_idle);
    out.sample("sluice_pool_servers", labels + ",state=\"used\"", p.servers_used);
    out.sample("sluice_pool_servers", labels + ",state=\"tested\"", p.servers_tested);
    out.sample("sluice_pool_servers", labels + ",state=\"login\"", p.servers.connecting);
  }
  out.family("sluice_pool_max_wait_seconds", "gauge",
             "How long the longest-waiting client of the pool has waited.");
  for (const auto& p : snapshot.pools)
    out.sample("sluice_pool_max_wait_seconds", pool_labels(p), seconds(p.max_wait_us));
  out.family("sluice_pool_size", "gauge", "The pool's size setting.");
  for (const auto& p : snapshot.pools)
    out.sample("sluice_pool_size", pool_labels(p), p.settings.size);

  for (const auto& counter : pool_counters_shown) {
    out.family(counter.name, "counter", counter.help);
    for (const auto& p : snapshot.pools)
      out.sample(counter.name, pool_labels(p), p.counters.totals.*counter.field);
  }
  out.family("sluice_client_wait_seconds_total", "counter",
             "Time clients spent waiting for a server.");
  for (const auto& p : snapshot.pools)
    out.sample("sluice_client_wait_seconds_total", pool_labels(p),
               seconds(p.counters.totals.wait_us));
  out.family("sluice_server_connections_opened_total", "counter", "Server connections opened.");
  for (const auto& p : snapshot.pools)
    out.sample("sluice_server_connections_opened_total", pool_labels(p), p.counters.servers_opened);
  out.family("sluice_server_connections_closed_total", "counter",
             "Server connections closed, by reason.");
  for (const auto& p : snapshot.pools)
    for (std::size_t i = 0; i < pool::server_close_reasons; ++i)
      out.sample("sluice_server_connections_closed_total",
                 fmt::format("{},reason=\"{}\"", pool_labels(p),
                             pool::name_of(static_cast<pool::server_close_reason>(i))),
                 p.counters.servers_closed[i]);

  const std::pair<std::string_view, pool::duration_histogram pool::pool_counters::view::*>
      histograms[] = {
          {"sluice_client_wait_duration_seconds", &pool::pool_counters::view::wait_times},
          {"sluice_transaction_duration_seconds", &pool::pool_counters::view::transaction_times},
          {"sluice_query_duration_seconds", &pool::pool_counters::view::query_times},
          {"sluice_client_login_duration_seconds", &pool::pool_counters::view::login_times}};
  const std::string_view histogram_help[] = {
      "A client's wait for a server, per grant.", "A transaction, first request to its end.",
      "A request, first message to its ReadyForQuery.", "A client's login to the pool."};
  for (std::size_t h = 0; h < std::size(histograms); ++h) {
    out.family(histograms[h].first, "histogram", histogram_help[h]);
    for (const auto& p : snapshot.pools)
      out.histogram(histograms[h].first, pool_labels(p), p.counters.*histograms[h].second);
  }

  out.family("sluice_client_login_failures_total", "counter", "Failed client logins, by reason.");
  for (std::size_t i = 0; i < login_failure_reasons; ++i)
    out.sample("sluice_client_login_failures_total",
               fmt::format("reason=\"{}\"", name_of(static_cast<login_failure>(i))),
               snapshot.login_failures[i]);
  out.family("sluice_errors_sent_total", "counter",
             "ErrorResponses sent to clients, by SQLSTATE class (its first two characters).");
  for (const auto& [sqlstate_class, count] : snapshot.errors_by_class)
    out.sample("sluice_errors_sent_total", fmt::format("class=\"{}\"", label(sqlstate_class)),
               count);
  return out.take();
}

}  // namespace sluice::proxy
