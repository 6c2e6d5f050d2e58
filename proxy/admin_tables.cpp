#include "proxy/admin_tables.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include "pool/stats_window.hpp"
#include "proxy/config/key_table.hpp"

namespace sluice::proxy {
namespace {

// PgBouncer's tuple descriptions (src/pktbuf.c): one letter per column, 's' text, 'i' int4,
// 'q' int8, 'N' numeric, 'T' a timestamp written as text. Writing them the same way keeps the
// tables easy to check against admin.c.
result_table make_table(std::string_view types, std::initializer_list<std::string_view> names) {
  result_table table;
  auto type = types.begin();
  for (auto name : names) {
    std::uint32_t oid = protocol::type_oid::text;
    switch (*type++) {
      case 'i':
        oid = protocol::type_oid::int4;
        break;
      case 'q':
        oid = protocol::type_oid::int8;
        break;
      case 'N':
        oid = protocol::type_oid::numeric;
        break;
      default:
        break;  // 's', 'T'
    }
    table.columns.push_back({name, oid});
  }
  return table;
}

using cell = std::optional<std::string>;
template <class Number>
cell num(Number n) {
  return std::to_string(n);
}
cell text(std::string_view s) {
  return std::string(s);
}

std::string_view mode_name(config::pool_mode mode) {
  return mode == config::pool_mode::session ? "session" : "transaction";
}

std::uint64_t whole_seconds(const std::optional<config::duration>& d) {
  return d ? static_cast<std::uint64_t>(
                 std::chrono::duration_cast<std::chrono::seconds>(*d).count())
           : 0;
}

// What PgBouncer's per-database statistics are: the pools of one database, summed.
struct database_totals {
  pool::pool_totals current, base;
  std::int64_t window_us = 0;
};
std::vector<std::pair<std::string, database_totals>> totals_by_database(
    const admin_snapshot& snapshot) {
  std::vector<std::pair<std::string, database_totals>> out;
  for (const auto& pool : snapshot.pools) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& entry) { return entry.first == pool.database; });
    if (it == out.end()) it = out.insert(out.end(), {pool.database, {}});
    it->second.current += pool.counters.totals;
    it->second.base += pool.window_base;
    it->second.window_us = std::max(it->second.window_us, pool.window_us);
  }
  return out;
}

pool::pool_totals averages_of(const database_totals& t) {
  return pool::averages(t.current, t.base, std::chrono::microseconds(t.window_us));
}

void add_totals_cells(std::vector<cell>& row, const pool::pool_totals& t) {
  for (auto v : {t.server_assignments, t.transactions, t.queries, t.bytes_received, t.bytes_sent,
                 t.transaction_us, t.query_us, t.wait_us, t.client_parses, t.server_parses, t.binds,
                 t.logins})
    row.push_back(num(v));
}

result_table show_stats(const admin_snapshot& snapshot) {
  auto table = make_table("sNNNNNNNNNNNNNNNNNNNNNNNNN", {"database",
                                                         "total_server_assignment_count",
                                                         "total_xact_count",
                                                         "total_query_count",
                                                         "total_received",
                                                         "total_sent",
                                                         "total_xact_time",
                                                         "total_query_time",
                                                         "total_wait_time",
                                                         "total_client_parse_count",
                                                         "total_server_parse_count",
                                                         "total_bind_count",
                                                         "total_client_login_count",
                                                         "avg_server_assignment_count",
                                                         "avg_xact_count",
                                                         "avg_query_count",
                                                         "avg_recv",
                                                         "avg_sent",
                                                         "avg_xact_time",
                                                         "avg_query_time",
                                                         "avg_wait_time",
                                                         "avg_client_parse_count",
                                                         "avg_server_parse_count",
                                                         "avg_bind_count",
                                                         "avg_client_login_count",
                                                         "total_requests"});
  // total_requests is PgBouncer 1.7's name for total_query_count, after PgBouncer's own columns:
  // Debian's prometheus-pgbouncer-exporter (1.7) still reads it, and fails without it.
  for (const auto& [database, totals] : totals_by_database(snapshot)) {
    std::vector<cell> row{text(database)};
    add_totals_cells(row, totals.current);
    add_totals_cells(row, averages_of(totals));
    row.push_back(num(totals.current.queries));
    table.rows.push_back(std::move(row));
  }
  return table;
}

result_table show_stats_totals(const admin_snapshot& snapshot) {
  auto table =
      make_table("sNNNNNNNNNNNN",
                 {"database", "server_assignment_count", "xact_count", "query_count",
                  "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
                  "client_parse_count", "server_parse_count", "bind_count", "client_login_count"});
  for (const auto& [database, totals] : totals_by_database(snapshot)) {
    std::vector<cell> row{text(database)};
    add_totals_cells(row, totals.current);
    table.rows.push_back(std::move(row));
  }
  return table;
}

result_table show_stats_averages(const admin_snapshot& snapshot) {
  auto table = make_table(
      "sNNNNNNNNNNNN",
      {"database", "server_assignment_count", "xact_count", "query_count", "bytes_received",
       "bytes_sent", "xact_time", "query_time", "wait_time", "avg_client_parse_count",
       "avg_server_parse_count", "avg_bind_count", "avg_client_login_count"});
  for (const auto& [database, totals] : totals_by_database(snapshot)) {
    std::vector<cell> row{text(database)};
    add_totals_cells(row, averages_of(totals));
    table.rows.push_back(std::move(row));
  }
  return table;
}

result_table show_pools(const admin_snapshot& snapshot) {
  auto table = make_table("ssiiiiiiiiiiiiiss",
                          {"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
                           "cl_waiting_cancel_req", "sv_active", "sv_active_cancel",
                           "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
                           "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts"});
  for (const auto& p : snapshot.pools) {
    // server_pool_fsm's idle count includes the servers SHOW POOLS calls used and tested.
    const auto plain_idle =
        p.servers.idle - std::min(p.servers.idle, p.servers_used + p.servers_tested);
    table.rows.push_back(
        {text(p.database), text(p.user), num(p.clients_active), num(p.clients_waiting), num(0),
         num(0), num(p.servers.active), num(0), num(0), num(plain_idle), num(p.servers_used),
         num(p.servers_tested), num(p.servers.connecting), num(p.max_wait_us / 1'000'000),
         num(p.max_wait_us % 1'000'000), text(mode_name(p.settings.mode)), std::nullopt});
  }
  return table;
}

// SHOW CLIENTS and SHOW SERVERS share PgBouncer's socket columns (SKF_STD in admin.c).
result_table socket_table() {
  return make_table("ssssssisiTTiiississii", {"type",
                                              "user",
                                              "database",
                                              "replication",
                                              "state",
                                              "addr",
                                              "port",
                                              "local_addr",
                                              "local_port",
                                              "connect_time",
                                              "request_time",
                                              "wait",
                                              "wait_us",
                                              "close_needed",
                                              "ptr",
                                              "link",
                                              "remote_pid",
                                              "tls",
                                              "application_name",
                                              "prepared_statements",
                                              "id"});
}

// PgBouncer's ptr and link are socket addresses; sluice's sessions and servers have ids, kept
// apart by a letter so a link names exactly one row of the other table.
std::string client_ref(std::uint64_t id) {
  return fmt::format("c{}", id);
}
std::string server_ref(std::uint64_t id) {
  return fmt::format("s{}", id);
}

result_table show_clients(const admin_snapshot& snapshot) {
  auto table = socket_table();
  for (const auto& c : snapshot.clients) {
    using state = admin_snapshot::client_state;
    const std::string_view state_name = c.state == state::waiting  ? "waiting"
                                        : c.state == state::active ? "active"
                                                                   : "idle";
    const auto wait = c.state == state::waiting ? c.wait_us : 0;
    table.rows.push_back({text("C"),
                          text(c.user),
                          text(c.database),
                          text("none"),
                          text(state_name),
                          text(c.address),
                          num(c.port),
                          text(c.local_address),
                          num(c.local_port),
                          timestamp_text(c.connected_at_us),
                          timestamp_text(c.request_at_us),
                          num(wait / 1'000'000),
                          num(wait % 1'000'000),
                          num(0),
                          client_ref(c.id),
                          c.server ? cell(server_ref(c.server)) : text(""),
                          num(0),
                          text(""),
                          text(c.application_name),
                          num(c.prepared_statements),
                          num(c.id)});
  }
  return table;
}

result_table show_servers(const admin_snapshot& snapshot) {
  auto table = socket_table();
  for (const auto& s : snapshot.servers) {
    using state = admin_snapshot::server_state;
    const std::string_view state_name = s.state == state::active   ? "active"
                                        : s.state == state::used   ? "used"
                                        : s.state == state::tested ? "tested"
                                                                   : "idle";
    table.rows.push_back({text("S"),
                          text(s.user),
                          text(s.database),
                          text("none"),
                          text(state_name),
                          text(s.address),
                          num(s.port),
                          text(s.local_address),
                          num(s.local_port),
                          timestamp_text(s.connected_at_us),
                          timestamp_text(s.request_at_us),
                          num(0),
                          num(0),
                          num(s.close_needed ? 1 : 0),
                          server_ref(s.id),
                          s.client ? cell(client_ref(s.client)) : text(""),
                          num(s.backend_pid),
                          text(""),
                          text(s.application_name),
                          num(s.prepared_statements),
                          num(s.id)});
  }
  return table;
}

result_table show_databases(const admin_snapshot& snapshot) {
  auto table =
      make_table("ssissiiiissiiiiiii",
                 {"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                  "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
                  "max_connections", "current_connections", "max_client_connections",
                  "current_client_connections", "paused", "disabled", "reserve_pool"});
  // reserve_pool is PgBouncer 1.7's name for reserve_pool_size, after PgBouncer's own columns,
  // for Debian's prometheus-pgbouncer-exporter (1.7) as total_requests in SHOW STATS.
  if (!snapshot.settings) return table;
  for (const auto& db : snapshot.settings->databases) {
    std::uint32_t servers = 0;
    for (const auto& p : snapshot.pools)
      if (p.database == db.name) servers += p.servers.total;
    const auto clients = std::count_if(snapshot.clients.begin(), snapshot.clients.end(),
                                       [&](const auto& c) { return c.database == db.name; });
    const bool paused =
        std::find(snapshot.paused_databases.begin(), snapshot.paused_databases.end(), db.name) !=
        snapshot.paused_databases.end();
    const bool disabled =
        std::find(snapshot.disabled_databases.begin(), snapshot.disabled_databases.end(),
                  db.name) != snapshot.disabled_databases.end();
    table.rows.push_back(
        {text(db.name), text(db.server.host), num(db.server.port),
         text(db.server.dbname.empty() ? db.name : db.server.dbname),
         db.server.user.empty() ? std::nullopt : text(db.server.user), num(db.pool.size),
         num(db.pool.min_size), num(db.pool.overflow), num(whole_seconds(db.pool.recycle)),
         text(mode_name(db.pool.mode)), std::nullopt, num(0), num(servers), num(0), num(clients),
         num(paused || snapshot.paused ? 1 : 0), num(disabled ? 1 : 0), num(db.pool.overflow)});
  }
  return table;
}

result_table show_users(const admin_snapshot& snapshot) {
  auto table =
      make_table("ssssiiii", {"name", "pool_size", "reserve_pool_size", "pool_mode",
                              "max_user_connections", "current_connections",
                              "max_user_client_connections", "current_client_connections"});
  if (!snapshot.settings) return table;
  for (const auto& user : snapshot.settings->users) {
    const auto servers = std::count_if(snapshot.servers.begin(), snapshot.servers.end(),
                                       [&](const auto& s) { return s.user == user.name; });
    const auto clients = std::count_if(snapshot.clients.begin(), snapshot.clients.end(),
                                       [&](const auto& c) { return c.user == user.name; });
    // sluice sizes pools per database only: the per-user sizes are unset, as PgBouncer shows
    // a user without its own pool_size ("" and NULL).
    table.rows.push_back({text(user.name), text(""), text(""), std::nullopt, num(0), num(servers),
                          num(0), num(clients)});
  }
  return table;
}

result_table show_lists(const admin_snapshot& snapshot) {
  auto table = make_table("si", {"list", "items"});
  const std::size_t databases = snapshot.settings ? snapshot.settings->databases.size() : 0;
  const std::size_t users = snapshot.settings ? snapshot.settings->users.size() : 0;
  // sluice keeps no free lists (slabs) and resolves no names itself: those rows are 0.
  const std::pair<std::string_view, std::size_t> lists[] = {
      {"databases", databases},
      {"users", users},
      {"peers", 0},
      {"pools", snapshot.pools.size()},
      {"peer_pools", 0},
      {"free_clients", 0},
      {"used_clients", snapshot.clients_open},
      {"login_clients", snapshot.clients_logging_in},
      {"free_servers", 0},
      {"used_servers", snapshot.servers.size()},
      {"dns_names", 0},
      {"dns_zones", 0},
      {"dns_queries", 0},
      {"dns_pending", 0},
  };
  for (const auto& [name, items] : lists) table.rows.push_back({text(name), num(items)});
  return table;
}

std::string duration_text(const std::optional<config::duration>& d) {
  if (!d) return "off";
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

std::string joined(const std::vector<std::string>& names) {
  return fmt::format("{}", fmt::join(names, ","));
}

// sluice's value of a key of its own config, as its YAML would write it.
std::optional<std::string> current_value(const config::settings& s, std::string_view path) {
  const auto& p = s.pool;
  if (path == "listen.host") return s.listen.host;
  if (path == "listen.port") return std::to_string(s.listen.port);
  if (path == "listen.metrics_port") return std::to_string(s.listen.metrics_port);
  if (path == "workers") return std::to_string(s.workers);
  if (path == "max_clients") return std::to_string(s.max_clients);
  if (path == "auth")
    return std::string(s.auth == config::auth_method::md5     ? "md5"
                       : s.auth == config::auth_method::plain ? "plain"
                                                              : "scram-sha-256");
  if (path == "max_message_size") return std::to_string(s.max_message_size);
  if (path == "client_login_timeout") return duration_text(s.client_login_timeout);
  if (path == "log_level") return s.log_level;
  if (path == "admin_users") return joined(s.admin_users);
  if (path == "stats_users") return joined(s.stats_users);
  if (path == "pool.mode") return std::string(mode_name(p.mode));
  if (path == "pool.size") return std::to_string(p.size);
  if (path == "pool.min_size") return std::to_string(p.min_size);
  if (path == "pool.overflow") return std::to_string(p.overflow);
  if (path == "pool.overflow_after") return duration_text(p.overflow_after);
  if (path == "pool.timeout") return duration_text(p.timeout);
  if (path == "pool.recycle") return duration_text(p.recycle);
  if (path == "pool.idle_timeout") return duration_text(p.idle_timeout);
  if (path == "pool.pre_ping") return duration_text(p.pre_ping);
  if (path == "pool.prepared_statements") return std::to_string(p.prepared_statements);
  if (path == "pool.client_idle_timeout") return duration_text(p.client_idle_timeout);
  if (path == "pool.idle_transaction_timeout") return duration_text(p.idle_transaction_timeout);
  if (path == "pool.query_timeout") return duration_text(p.query_timeout);
  if (path == "pool.lastval_window") return duration_text(p.lastval_window);
  if (path == "pool.connect_timeout") return duration_text(p.connect_timeout);
  if (path == "pool.login_timeout") return duration_text(p.login_timeout);
  return std::nullopt;
}

result_table show_config(const admin_snapshot& snapshot) {
  auto table = make_table("ssss", {"key", "value", "default", "changeable"});
  if (!snapshot.settings) return table;
  const auto& s = *snapshot.settings;
  const auto seconds = [](const std::optional<config::duration>& d) {
    return std::to_string(whole_seconds(d));
  };
  // PgBouncer's names for the keys that mean the same, with PgBouncer's units (seconds), its
  // defaults and "no": sluice changes nothing at run time until RELOAD lands.
  const std::string pgbouncer_keys[][3] = {
      {"listen_addr", s.listen.host, "localhost"},
      {"listen_port", std::to_string(s.listen.port), "6432"},
      {"max_client_conn", std::to_string(s.max_clients), "100"},
      {"pool_mode", std::string(mode_name(s.pool.mode)), "session"},
      {"default_pool_size", std::to_string(s.pool.size), "20"},
      {"min_pool_size", std::to_string(s.pool.min_size), "0"},
      {"reserve_pool_size", std::to_string(s.pool.overflow), "0"},
      {"reserve_pool_timeout", seconds(s.pool.overflow_after), "5"},
      {"server_lifetime", seconds(s.pool.recycle), "3600"},
      {"server_idle_timeout", seconds(s.pool.idle_timeout), "600"},
      {"server_check_delay", seconds(s.pool.pre_ping), "30"},
      {"server_connect_timeout", seconds(s.pool.connect_timeout), "15"},
      {"query_wait_timeout", seconds(s.pool.timeout), "120"},
      {"query_timeout", seconds(s.pool.query_timeout), "0"},
      {"client_idle_timeout", seconds(s.pool.client_idle_timeout), "0"},
      {"idle_transaction_timeout", seconds(s.pool.idle_transaction_timeout), "0"},
      {"client_login_timeout", seconds(s.client_login_timeout), "60"},
      {"max_prepared_statements", std::to_string(s.pool.prepared_statements), "200"},
      {"max_packet_size", std::to_string(s.max_message_size), "2147483647"},
      {"max_db_connections", "0", "0"},
      {"max_user_connections", "0", "0"},
      {"auth_type", *current_value(s, "auth"), "md5"},
      {"admin_users", joined(s.admin_users), ""},
      {"stats_users", joined(s.stats_users), ""},
  };
  for (const auto& [key, value, fallback] : pgbouncer_keys)
    table.rows.push_back({text(key), text(value), text(fallback), text("no")});
  // Then sluice's own, by their paths in its YAML.
  for (const auto& spec : config::key_table()) {
    if (config::is_element(spec) || spec.secret) continue;
    auto value = current_value(s, spec.path);
    if (!value) continue;  // sections, databases and users: SHOW DATABASES and USERS show them
    table.rows.push_back({text(spec.path), std::move(value), text(spec.default_value),
                          text(spec.reloadable ? "yes" : "no")});
  }
  return table;
}

result_table show_state(const admin_snapshot& snapshot) {
  auto table = make_table("ss", {"key", "value"});
  const auto yes_no = [](bool b) { return text(b ? "yes" : "no"); };
  table.rows.push_back({text("active"), yes_no(!snapshot.paused)});
  table.rows.push_back({text("paused"), yes_no(snapshot.paused)});
  table.rows.push_back({text("suspended"), yes_no(false)});
  return table;
}

// PgBouncer reports its slab allocators; sluice has none, so the table has no rows.
result_table show_mem(const admin_snapshot&) {
  return make_table("siiii", {"name", "size", "used", "free", "memtotal"});
}

result_table show_version(const admin_snapshot&) {
  auto table = make_table("s", {"version"});
  table.rows.push_back({text("sluice " SLUICE_VERSION_STRING)});
  return table;
}

struct show_entry {
  std::string_view name;
  result_table (*build)(const admin_snapshot&);
};
constexpr show_entry show_entries[] = {
    {"POOLS", show_pools},
    {"STATS", show_stats},
    {"STATS_TOTALS", show_stats_totals},
    {"STATS_AVERAGES", show_stats_averages},
    {"CLIENTS", show_clients},
    {"SERVERS", show_servers},
    {"DATABASES", show_databases},
    {"USERS", show_users},
    {"LISTS", show_lists},
    {"CONFIG", show_config},
    {"VERSION", show_version},
    {"STATE", show_state},
    {"MEM", show_mem},
};

}  // namespace

std::optional<result_table> show_table(std::string_view what, const admin_snapshot& snapshot) {
  for (const auto& entry : show_entries)
    if (entry.name == what) return entry.build(snapshot);
  return std::nullopt;
}

std::vector<std::string_view> show_table_names() {
  std::vector<std::string_view> names;
  for (const auto& entry : show_entries) names.push_back(entry.name);
  return names;
}

std::string timestamp_text(std::int64_t us) {
  const std::time_t seconds = static_cast<std::time_t>(us / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return buffer;
}

}  // namespace sluice::proxy
