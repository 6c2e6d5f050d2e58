#include "proxy/admin_console.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

#include "protocol/backend_messages.hpp"
#include "proxy/pool_registry.hpp"
#include "proxy/shared_statement_registry.hpp"

namespace sluice::proxy {
namespace {

std::string normalize(std::string_view sql) {
  std::string out;
  for (char c : sql) {
    if (c == ';') break;
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// As the config writes durations: "1h", "30s", "250ms", or "off".
std::string millis(std::optional<std::chrono::milliseconds> d) {
  if (!d) return "off";
  const auto ms = d->count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

class table {
 public:
  explicit table(std::vector<std::string_view> columns) : columns_(std::move(columns)) {}
  void row(std::vector<std::string> values) { rows_.push_back(std::move(values)); }
  void write(std::string& out, std::string_view tag) const {
    std::vector<protocol::column_description> described;
    for (auto name : columns_) described.push_back({.name = name});
    protocol::append_row_description(out, described);
    for (const auto& values : rows_) {
      std::vector<std::optional<std::string_view>> cells(values.begin(), values.end());
      protocol::append_data_row(out, cells);
    }
    protocol::append_command_complete(out, fmt::format("{} {}", tag, rows_.size()));
  }

 private:
  std::vector<std::string_view> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace

console_access console_access_of(const config::settings& settings, std::string_view user) {
  const auto listed = [&](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), user) != names.end();
  };
  if (listed(settings.admin_users)) return console_access::admin;
  if (listed(settings.stats_users)) return console_access::stats;
  return console_access::none;
}

admin_snapshot take_snapshot(const pool_registry& pools,
                             const shared_statement_registry& statements, std::uint32_t clients,
                             unsigned workers) {
  admin_snapshot snapshot;
  for (const auto& pool : pools.all())
    snapshot.pools.push_back({pool->name(), pool->settings(), pool->snapshot()});
  snapshot.clients = clients;
  snapshot.prepared_statements = statements.size();
  snapshot.workers = workers;
  return snapshot;
}

std::string answer_admin_query(std::string_view sql, const admin_snapshot& snapshot) {
  std::string out;
  const auto command = normalize(sql);
  if (command == "SHOW POOLS") {
    table pools({"pool", "mode", "size", "overflow", "idle", "active", "connecting", "waiting",
                 "total", "overflow_in_use", "recycle", "pre_ping"});
    for (const auto& p : snapshot.pools) {
      pools.row({p.name, p.settings.mode == config::pool_mode::session ? "session" : "transaction",
                 std::to_string(p.settings.size), std::to_string(p.settings.overflow),
                 std::to_string(p.stats.idle), std::to_string(p.stats.active),
                 std::to_string(p.stats.connecting), std::to_string(p.stats.waiting),
                 std::to_string(p.stats.total), std::to_string(p.stats.overflow_in_use),
                 millis(p.settings.recycle), millis(p.settings.pre_ping)});
    }
    pools.write(out, "SHOW");
  } else if (command == "SHOW STATS") {
    std::uint32_t servers = 0, waiting = 0;
    for (const auto& p : snapshot.pools) {
      servers += p.stats.total;
      waiting += p.stats.waiting;
    }
    table stats(
        {"clients", "pools", "servers", "waiting_clients", "prepared_statements", "workers"});
    stats.row({std::to_string(snapshot.clients), std::to_string(snapshot.pools.size()),
               std::to_string(servers), std::to_string(waiting),
               std::to_string(snapshot.prepared_statements), std::to_string(snapshot.workers)});
    stats.write(out, "SHOW");
  } else if (command == "SHOW VERSION") {
    table version({"version"});
    version.row({"sluice " SLUICE_VERSION_STRING});
    version.write(out, "SHOW");
  } else if (command == "SHOW HELP" || command.empty()) {
    table help({"command", "what it shows"});
    help.row({"SHOW POOLS", "each (database, user) pool: settings and server counts"});
    help.row({"SHOW STATS", "totals: clients, pools, servers, waiting clients, statements"});
    help.row({"SHOW VERSION", "the sluice version"});
    help.write(out, "SHOW");
  } else {
    protocol::append_error_response(
        out, {.severity = "ERROR",
              .sqlstate = "42601",
              .message = "the sluice admin console only knows SHOW HELP, SHOW POOLS, "
                         "SHOW STATS and SHOW VERSION",
              .detail = {},
              .hint = {}});
  }
  protocol::append_ready_for_query(out, 'I');
  return out;
}

}  // namespace sluice::proxy
