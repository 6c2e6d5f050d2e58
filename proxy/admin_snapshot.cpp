#include "proxy/admin_snapshot.hpp"

#include <algorithm>
#include <map>

#include "proxy/daemon_context.hpp"
#include "proxy/server_status.hpp"
#include "proxy/worker_set.hpp"

namespace sluice::proxy {
namespace {

using steady = std::chrono::steady_clock;

std::int64_t micros(steady::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

admin_snapshot take_snapshot(daemon_context& context) {
  admin_snapshot out;
  const auto steady_now = steady::now();
  out.now_us = wall_clock_us();
  // A steady_clock reading as system_clock microseconds, by its distance from now.
  const auto wall_of = [&](steady::rep ticks) {
    return out.now_us - micros(steady_now - steady::time_point(steady::duration(ticks)));
  };
  out.settings = &context.settings;
  out.workers = worker_count(context.settings.workers);
  out.draining = context.draining.load(std::memory_order_relaxed);
  out.prepared_statements = context.statements.size();
  auto controls = context.controls.load();
  out.paused = controls.all_paused;
  out.paused_databases = std::move(controls.paused);
  out.disabled_databases = std::move(controls.disabled);

  const auto pools = context.pools.all();
  std::map<const server_pool*, std::size_t> row_of;
  for (const auto& pool : pools) {
    admin_snapshot::pool_row row;
    const auto& database = pool->database();
    row.database = database.name;
    row.user = pool->client_user();
    row.server_user = pool->server_user();
    row.host = database.server.host;
    row.port = database.server.port;
    row.dbname = database.server.dbname.empty() ? database.name : database.server.dbname;
    row.forced_user = database.server.user;
    row.settings = pool->settings();
    row.servers = pool->snapshot();
    row.counters = pool->counters().load();
    const auto window = pool->stats_window();
    row.window_base = window.older;
    row.window_us = micros(steady_now - window.older_at);
    row.reachable = pool->upstream() != server_pool::upstream_state::unreachable ||
                    row.servers.idle + row.servers.active > 0;

    for (const auto& server : pool->servers()) {
      admin_snapshot::server_row s;
      s.id = server.id;
      s.user = row.server_user;
      s.database = row.database;
      using state = server_status::state;
      switch (server.state) {
        case state::login:  // not published before it is connected
        case state::idle:
          s.state = row.settings.pre_ping && server.in_state >= *row.settings.pre_ping
                        ? admin_snapshot::server_state::used
                        : admin_snapshot::server_state::idle;
          break;
        case state::tested:
          s.state = admin_snapshot::server_state::tested;
          break;
        case state::active:
          s.state = admin_snapshot::server_state::active;
          break;
      }
      if (s.state == admin_snapshot::server_state::used) ++row.servers_used;
      if (s.state == admin_snapshot::server_state::tested) ++row.servers_tested;
      s.address = row.host;
      s.port = row.port;
      s.local_address = server.local_address;
      s.local_port = server.local_port;
      s.connected_at_us = server.connected_at_us;
      s.request_at_us =
          server.request_since != 0 ? wall_of(server.request_since) : s.connected_at_us;
      s.close_needed =
          row.settings.recycle &&
          out.now_us - s.connected_at_us >=
              std::chrono::duration_cast<std::chrono::microseconds>(*row.settings.recycle).count();
      s.client = server.client;
      s.backend_pid = server.backend_pid;
      s.application_name = server.application_name;
      s.prepared_statements = server.prepared_statements;
      out.servers.push_back(std::move(s));
    }
    row_of[pool.get()] = out.pools.size();
    out.pools.push_back(std::move(row));
  }

  for (auto& client : context.directory.clients()) {
    ++out.clients_open;
    if (!client.logged_in) {
      ++out.clients_logging_in;
      continue;
    }
    admin_snapshot::client_row c;
    c.id = client.id;
    c.user = std::move(client.user);
    c.database = std::move(client.database);
    c.application_name = std::move(client.application_name);
    c.address = std::move(client.address);
    c.port = client.port;
    c.local_address = std::move(client.local_address);
    c.local_port = client.local_port;
    c.connected_at_us = client.connected_at_us;
    c.request_at_us = client.request_since != 0 ? wall_of(client.request_since) : c.connected_at_us;
    c.server = client.server;
    c.prepared_statements = client.prepared_statements;
    using state = client_status::state;
    c.state = client.state == state::waiting  ? admin_snapshot::client_state::waiting
              : client.state == state::active ? admin_snapshot::client_state::active
                                              : admin_snapshot::client_state::idle;
    if (c.state != admin_snapshot::client_state::idle && client.request_since != 0)
      c.wait_us =
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, out.now_us - c.request_at_us));
    if (auto it = row_of.find(client.pool); client.pool && it != row_of.end()) {
      auto& row = out.pools[it->second];
      if (c.state == admin_snapshot::client_state::waiting) {
        ++row.clients_waiting;
        row.max_wait_us = std::max(row.max_wait_us, c.wait_us);
      } else {
        ++row.clients_active;
      }
    }
    out.clients.push_back(std::move(c));
  }

  for (std::size_t i = 0; i < login_failure_reasons; ++i)
    out.login_failures[i] = context.counters.login_failures[i].load(std::memory_order_relaxed);
  out.errors_by_class = context.counters.errors.load();
  return out;
}

}  // namespace sluice::proxy
